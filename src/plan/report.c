#include "report.h"

#include "../base/err.h"
#include "catalog.h"
#include "html.h"

#include <string.h>
#include <time.h>

/* The aggregate tok/s of in's model on hw (0: it does not fit there). */
static double option_speed(const plan_report_in *in, const plan_hw *hw0)
{
    plan_hw hw = *hw0;
    if (in->eff_this > 0 && !strcmp(hw.id, "this"))
        hw.eff_decode = in->eff_this;
    plan_fit fit = plan_fit_of(in->model, in->model_quant, in->ctx, in->n_seq, in->kv_bpe, &hw, in->reserve_bytes);
    plan_speed sp = plan_speed_of(in->model, in->model_quant, (double)in->ctx / 2.0, in->n_seq, in->kv_bpe, &hw);
    return fit.fits ? sp.batch : 0;
}

void plan_report_options(const plan_report_in *in, plan_option opt[4])
{
    const plan_hw *set[3] = {in->a, in->b, in->cloud};
    double ts[3];
    for (int i = 0; i < 3; i++)
        ts[i] = option_speed(in, set[i]);
    plan_option_of(&opt[0], in->a->id, &set[0], &ts[0], 1, in->prices);
    plan_option_of(&opt[1], in->b->id, &set[1], &ts[1], 1, in->prices);
    plan_option_of(&opt[2], "hybrid (A + B)", set, ts, 2, in->prices);
    plan_option_of(&opt[3], in->cloud->id, &set[2], &ts[2], 1, in->prices);
}

int plan_report_html(FILE *f, const plan_report_in *in)
{
    if (!in || !in->a || !in->b || !in->cloud || !in->model || !in->model_quant || !in->prices)
        return err_set(SOV_EINVAL, "plan report: a machine, the model or the prices missing");
    plan_option opt[4];
    plan_report_options(in, opt);
    const char *qn = in->model_quant_name ? in->model_quant_name : in->model_quant;
    char title[320], gen[200], om[160], when[32];
    snprintf(title, sizeof title, "sov plan: %s %s on %s, %s, both and the cloud", in->model->id, qn, in->a->id,
             in->b->id);
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", &tm);
    snprintf(gen, sizeof gen, "written by sov plan on %s; every figure is recomputed from the inputs shown", when);
    snprintf(om, sizeof om, "%s %s", in->model->id, qn);
    int nc;
    const plan_model *cat = plan_catalog(&nc);
    plan_html_in h = {.title = title,
                      .generated = gen,
                      .hw = in->hw,
                      .n_hw = in->n_hw,
                      .models = cat,
                      .n_models = nc,
                      .quant = in->quant ? in->quant : PLAN_REPORT_QUANT,
                      .ctx = in->ctx,
                      .n_seq = in->n_seq,
                      .kv_bpe = in->kv_bpe,
                      .reserve_bytes = in->reserve_bytes,
                      .prices = in->prices,
                      .price_sources = in->price_sources,
                      .options = opt,
                      .n_options = 4,
                      .options_model = om,
                      .horizon_days = 3 * 365.25,
                      .verdicts = in->verdicts,
                      .n_verdicts = in->n_verdicts};
    return plan_html_write(f, &h);
}
