#include "planinfo.h"

#include "../base/err.h"
#include "../plan/calib.h"
#include "../plan/catalog.h"
#include "../plan/hw.h"
#include "../plan/report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

json_t *planinfo_json(void)
{
    plan_prices p;
    const char *src[3];
    plan_prices_default(&p, src);
    return json_pack("{s:s,s:{s:s,s:f,s:f,s:f,s:f,s:f,s:f},s:[s,s,s],s:s}", "object", "plan", "prices", "currency",
                     p.currency, "in_per_m", p.in_per_m, "out_per_m", p.out_per_m, "in_out_ratio", p.in_out_ratio,
                     "tariff_kwh", p.tariff_kwh, "duty", p.duty, "amortize_months", p.amortize_months, "sources",
                     src[0], src[1], src[2], "report", "/v1/plan/report");
}

int planinfo_report(char **html, size_t *len)
{
    *html = NULL;
    *len = 0;
    char path[1024], cpath[1024];
    plan_hw *file = NULL, *all = NULL;
    int n_file = 0, rc;
    char *buf = NULL;
    size_t blen = 0;
    FILE *f = NULL;
    plan_calib *cal = calloc(1, sizeof *cal);
    if (!cal)
        return err_set(SOV_ENOMEM, "out of memory");
    if (!plan_hw_default_path(path, sizeof path)) {
        rc = err_set(SOV_EINVAL, "the hardware file's path is too long");
        goto fail;
    }
    if ((rc = plan_hw_load(path, &file, &n_file)))
        goto fail;
    bool have_this = false;
    const char *cp = plan_calib_default_path(cpath, sizeof cpath);
    if (cp) {
        rc = plan_calib_load(cp, cal);
        if (rc && rc != SOV_ENOTFOUND)
            goto fail;
        have_this = rc == 0;
    }
    if (!(all = calloc((size_t)n_file + 1, sizeof *all))) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    memcpy(all, file, (size_t)n_file * sizeof *all);
    int n_all = n_file;
    if (have_this)
        all[n_all++] = cal->hw;
    const plan_hw *a = plan_hw_find(all, n_all, PLAN_REPORT_A), *b = plan_hw_find(all, n_all, PLAN_REPORT_B),
                  *c = plan_hw_find(all, n_all, PLAN_REPORT_CLOUD);
    if (!a || !b || !c) {
        rc = err_set(SOV_ENOTFOUND, "%s has no profile '%s'", path,
                     !a ? PLAN_REPORT_A : !b ? PLAN_REPORT_B : PLAN_REPORT_CLOUD);
        goto fail;
    }
    const plan_model *m = plan_catalog_find(PLAN_REPORT_MODEL);
    if (!m) {
        rc = err_set(SOV_ENOTFOUND, "the catalogue has no model '%s'", PLAN_REPORT_MODEL);
        goto fail;
    }
    plan_prices prices;
    const char *src[3];
    plan_prices_default(&prices, src);
    plan_report_in in = {.hw = all,
                         .n_hw = n_all,
                         .a = a,
                         .b = b,
                         .cloud = c,
                         .eff_this = have_this ? plan_calib_eff(cal, PLAN_REPORT_QUANT) : 0,
                         .model = m,
                         .model_quant = PLAN_REPORT_QUANT,
                         .quant = PLAN_REPORT_QUANT,
                         .ctx = PLAN_REPORT_CTX,
                         .n_seq = 1,
                         .kv_bpe = 2, /* f16 KV */
                         .reserve_bytes = -1,
                         .prices = &prices,
                         .price_sources = src};
    if (!(f = open_memstream(&buf, &blen))) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    rc = plan_report_html(f, &in);
    if (fclose(f) && !rc)
        rc = err_set(SOV_ENOMEM, "writing the report failed");
    f = NULL;
    if (rc)
        goto fail;
    *html = buf;
    *len = blen;
    buf = NULL;
fail:
    free(buf);
    free(all);
    plan_hw_free(file);
    free(cal);
    return rc;
}
