/* catalog: well-known model architectures for `sov plan` (shapes from each
 * model's published config.json; params counted by plan_model_count). */
#ifndef SOV_PLAN_CATALOG_H
#define SOV_PLAN_CATALOG_H

#include "plan.h"

/* The catalogue, *n entries (n may be NULL), with params / params_active
 * filled in. Static storage: valid for the life of the process. */
const plan_model *plan_catalog(int *n);

/* The entry whose id is id (case-insensitive), or NULL. */
const plan_model *plan_catalog_find(const char *id);

#endif
