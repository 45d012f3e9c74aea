/* planinfo: what `sov serve` tells of `sov plan` (GET /v1/plan and
 * GET /v1/plan/report): the prices the planner's economics use, so a client
 * (the console's status page) can value the tokens served at cloud prices,
 * and the planner's HTML report with its default inputs. */
#ifndef SOV_PLANINFO_H
#define SOV_PLANINFO_H

#include <jansson.h>
#include <stddef.h>

/* {"object":"plan","prices":{currency, in_per_m, out_per_m, in_out_ratio,
 * tariff_kwh, duty, amortize_months},"sources":[api prices, tariff, duty
 * and amortization],"report":"/v1/plan/report"}: plan_prices_default's
 * figures (per 1M tokens) and where they come from. New reference; NULL
 * out of memory. */
json_t *planinfo_json(void);

/* The report `sov plan --html FILE` writes with its defaults (the options'
 * model PLAN_REPORT_MODEL on PLAN_REPORT_A, PLAN_REPORT_B, both and
 * PLAN_REPORT_CLOUD; every profile of the hardware file on the charts, and
 * this machine when `sov plan --calibrate` stored its figures). The
 * hardware file is plan_hw_default_path's, read on every call. *html
 * malloc'd (caller frees), *len its length. Errors (with a message):
 * those of plan_hw_load and plan_calib_load (a missing calibration is
 * fine), SOV_ENOTFOUND (a default machine missing from the file),
 * SOV_ENOMEM, SOV_EIO. */
int planinfo_report(char **html, size_t *len);

#endif
