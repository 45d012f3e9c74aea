/* hw: hardware profiles for `sov plan`: the data file (data/plan/hardware.ini)
 * and the current machine, measured.
 *
 * The file is INI: one [hw.ID] section per profile, keys name, mem_gb,
 * bw_gbs, tflops_f16, tflops_int8, tflops_int4, watts_load, watts_idle,
 * price, price_hour, reserve_gb, eff_decode, eff_prefill, source. GB are
 * 1e9 bytes, GB/s 1e9 bytes/s, TFLOPS 1e12 flop/s. name, mem_gb and bw_gbs
 * are required; other figures default to 0 (unknown), eff_* to
 * PLAN_HW_EFF_DECODE / PLAN_HW_EFF_PREFILL. Errors are one line,
 * "FILE:LINE: [hw.ID] key: what". */
#ifndef SOV_PLAN_HW_H
#define SOV_PLAN_HW_H

#include <stddef.h>

#include "plan.h"

#define PLAN_HW_EFF_DECODE 0.7  /* assumed until calibrated */
#define PLAN_HW_EFF_PREFILL 0.4 /* assumed until calibrated */

/* Reads the profiles of the file at path into *out (n entries, in file
 * order; owned by the caller: plan_hw_free). Errors (with *out NULL, *n 0):
 * SOV_EIO (cannot read), SOV_EFORMAT (syntax, line too long), SOV_EINVAL
 * (unknown section or key, duplicate key or profile, bad or missing value,
 * no profile at all), SOV_ENOMEM. */
int plan_hw_load(const char *path, plan_hw **out, int *n);

/* The profile with this id, or NULL. */
const plan_hw *plan_hw_find(const plan_hw *hw, int n, const char *id);

void plan_hw_free(plan_hw *hw);

/* The default data file: $SOV_DATA/plan/hardware.ini when SOV_DATA is set;
 * else data/plan/hardware.ini under the parent of the executable's
 * directory (.../build/sov -> .../data/plan/hardware.ini) when that file
 * exists; else ./data/plan/hardware.ini. Returns buf, or NULL if the path
 * does not fit in cap bytes. */
const char *plan_hw_default_path(char *buf, size_t cap);

/* The current machine, id "this": memory from /proc/meminfo MemTotal, read
 * bandwidth measured with membw (all threads, the best kernel and pass of
 * a buffer well above the last-level cache), fp32 peak from cpupeak (the
 * larger of the CPUID-table figure and the measured FMA rate) in
 * flops_f16 (the engine computes in fp32 on a CPU), the CPU's model name,
 * thread count and engine kernel ISA (kern_best) in name, the int8 rate
 * derived from it in flops_int8, how each figure was got in source; watts
 * and price 0 (unknown), reserve 10 % of memory (assumed), eff_* the defaults,
 * calibrated false. Takes about a second. Errors: SOV_EIO (no
 * /proc/meminfo), SOV_ENOMEM, and those of membw / cpupeak. */
int plan_hw_this(plan_hw *out);

/* INT8 dot-product rate of the engine's kernels on this CPU per fp32 FMA
 * flop: 4 with AVX-512 VNNI (vpdpbusd: 64 int8 multiply-adds where an FMA
 * does 16 fp32), 2 with AVX2 (vpmaddubsw + vpmaddwd: 32 per two
 * instructions against 8), 1 for the scalar kernels. plan_hw_this sets
 * flops_int8 = flops_f16 x this. */
double plan_hw_int8_per_fp32(void);

/* plan_hw_this with the bandwidth buffer size (bytes, >= 1 MiB) and the
 * number of passes per kernel given (plan_hw_this: 512 MiB, 3 passes, the
 * buffer capped at an eighth of the memory). */
int plan_hw_measure(plan_hw *out, unsigned long long bw_bytes, int passes);

#endif
