/* calib: `sov plan --calibrate`: the current machine's efficiency factors,
 * measured with the engine's own bench code on synthetic models, stored in
 * a small INI file and read back by later runs of `sov plan`.
 *
 * The calibration models are synthetic tinyllama-1.1b files (sov synth) of
 * seed 1, not seed 0 (what `sov synth` makes by default): the same shape
 * and bytes per token as the usual benchmark models but other files, one
 * per calibration quant (q4_0, q8_0, q4_k_m, q6_k). Each is decoded as
 * `sov bench -p 0 -n N_GEN -r REPS` does, the read bandwidth measured right
 * after each run; per run eff = tok/s x bytes per token / bandwidth, and the
 * quant keeps its median run. Predictions are then
 *
 *   decode tok/s = bw x eff(quant) / bytes per token (of the planned model)
 *
 * with bw the median bandwidth of all runs: the same measurements the
 * effs are relative to, so a calibration model's prediction gives back
 * its own speed (plan_hw_this's one-off figure is named in hw.source).
 * eff_decode, for quants not measured, is the median of the quants' eff.
 *
 * The file (INI, libinih):
 *
 *   [calibration]
 *   version = 1
 *   when = 2025-01-31T12:00:00Z      ; UTC, ISO 8601
 *   cpu = ...                        ; optional strings: cpu, isa, name, source
 *   isa = avx512
 *   threads = 2
 *   mem_gb = 24.6                    ; GB = 1e9 bytes
 *   bw_gbs = 34.5                    ; GB/s = 1e9 bytes/s
 *   tflops_f16 = 0.36                ; fp32 peak at `threads`, 1e12 flop/s (optional, 0)
 *   tflops_int8 = 1.44               ; int8 peak of the kernels (plan_hw_int8_per_fp32 x fp32; optional, 0)
 *   reserve_gb = 2.46                ; optional (0)
 *   eff_decode = 0.92
 *   eff_prefill = 0.7
 *   [quant.q4_0]                     ; one per measured quant (a name plan_quant_bpw knows)
 *   model = tinyllama-1.1b seed 1    ; optional
 *   tok_s = 58.5
 *   bytes_token = 582248448          ; bytes
 *   bw_gbs = 34.6
 *   eff = 0.93
 *
 * Required keys: version, when, threads, mem_gb, bw_gbs, eff_decode,
 * eff_prefill; tok_s, bytes_token, bw_gbs, eff. eff_decode, every eff and
 * eff_prefill are in (0, 1]: shares of a bound, so a prediction never
 * exceeds it. eff_prefill is measured against the int8 peak (the quantized
 * matrix kernels compute in int8: against the fp32 peak, q4_0 pp64 ran at
 * 1.0 to 1.1 on a 2-core AVX-512 VM); a measured eff above 1 fails the
 * calibration (the bound it was measured against is wrong). */
#ifndef SOV_PLAN_CALIB_H
#define SOV_PLAN_CALIB_H

#include <stddef.h>
#include <stdio.h>

#include "plan.h"

#define PLAN_CALIB_MAX_QUANT 8

typedef struct plan_calib_quant {
    char quant[16];          /* "q4_0" */
    char model[64];          /* the synthetic model measured ("tinyllama-1.1b seed 1") */
    double tok_s;            /* measured tg tok/s */
    double bytes_token;      /* bytes read per decoded token (weights + KV at the run's context) */
    double bw;               /* read bandwidth measured right after the run, bytes/s */
    double eff;              /* tok_s x bytes_token / bw (tok_s and bw: the run of median eff) */
} plan_calib_quant;

typedef struct plan_calib {
    plan_hw hw;              /* id "this": measured memory, bandwidth, peak; eff_decode the median
                              * of q[].eff, eff_prefill measured; calibrated true */
    int threads;             /* thread count of the runs */
    char cpu[96];            /* CPU model name */
    char isa[24];            /* the engine kernels' ISA ("avx512", "avx2", "scalar") */
    char when[32];           /* UTC time of the calibration, ISO 8601 */
    int n_quant;
    plan_calib_quant q[PLAN_CALIB_MAX_QUANT];
} plan_calib;

#define PLAN_CALIB_N_GEN 32   /* default tg tokens per run */
#define PLAN_CALIB_REPS 5     /* default timed runs per quant (after one warm-up) */
#define PLAN_CALIB_N_PP 64    /* prompt tokens of the eff_prefill run */
#define PLAN_CALIB_SEED 1     /* seed of the calibration models */

typedef struct plan_calib_opts {
    const char *cache_dir;   /* where the calibration models are kept; NULL: plan_calib_default_cache */
    int threads;             /* 0: all CPUs */
    int n_gen;               /* tg tokens per run; 0: PLAN_CALIB_N_GEN */
    int reps;                /* timed runs per quant (1..32); 0: PLAN_CALIB_REPS */
    FILE *progress;          /* a line per step; NULL: quiet */
} plan_calib_opts;

/* The calibration file: $SOV_PLAN_CALIB when set and not empty, else
 * $XDG_DATA_HOME/sov/plan-calibration.ini (an absolute XDG_DATA_HOME),
 * else $HOME/.local/share/sov/plan-calibration.ini (HOME unset: the
 * user's home directory from the password database). Returns buf, or NULL
 * when no home directory is known or the path does not fit in cap. */
const char *plan_calib_default_path(char *buf, size_t cap);

/* Where the calibration models are synthesized and kept: $SOV_CACHE/plan
 * when SOV_CACHE is set and not empty, else $XDG_CACHE_HOME/sov/plan (an
 * absolute XDG_CACHE_HOME), else $HOME/.cache/sov/plan. Returns buf or
 * NULL, as plan_calib_default_path. */
const char *plan_calib_default_cache(char *buf, size_t cap);

/* Measures this machine into *out (see the top of this file): memory and
 * name as plan_hw_this, the fp32 peak at the thread count (the larger of
 * the CPUID table and measured FMA chains), then for each calibration
 * quant the model is synthesized into the cache directory unless there
 * (created as needed; written under a temporary name and renamed into
 * place, so a failure or a concurrent run leaves no partial file) and
 * decoded, bandwidth after each run; eff_prefill = pp tok/s x matrix flops
 * per token / peak from a PLAN_CALIB_N_PP-token prompt on the q4_0 model.
 * About 35 s on 2 cores once the models exist (each synthesis 5 to 12 s,
 * once; 3.2 GB of disk in all). Errors (*out zeroed): SOV_EINVAL (bad
 * options), SOV_EIO (cache directory), SOV_ENOMEM, and those of
 * plan_hw_this, synth_write and bench_model. */
int plan_calibrate(const plan_calib_opts *o, plan_calib *out);

/* Writes c to path as the INI above, creating missing parent directories,
 * through "<path>.tmp.PID" renamed into place. Errors: SOV_EINVAL (a string
 * that would not read back: a control character, or ';' or '#' after a
 * blank, leading or trailing blanks; a value outside the loader's ranges),
 * SOV_EIO. */
int plan_calib_save(const char *path, const plan_calib *c);

/* Reads the file at path into *out (hw.id "this", hw.calibrated true,
 * hw.name the stored name or "this machine (calibrated)"). Errors (*out
 * zeroed): SOV_ENOTFOUND when the file does not exist (callers then use
 * assumed figures); SOV_EIO (unreadable); SOV_EFORMAT (syntax, line too
 * long) and SOV_EINVAL (unknown section or key, duplicate, missing or bad
 * value, unknown quant, more than PLAN_CALIB_MAX_QUANT quants, no
 * [calibration]) as one line "FILE:LINE: [section] key: what". */
int plan_calib_load(const char *path, plan_calib *out);

/* The decode efficiency for quant (case-insensitive): the quant's own eff
 * when it was measured; else a k-quant mix and its base type share their
 * figure (q4_k, q4_k_s and q4_k_m match each other); else hw.eff_decode. */
double plan_calib_eff(const plan_calib *c, const char *quant);

/* A readable summary: the machine, one row per quant (quant, model, tok/s,
 * MB/token, GB/s, eff), eff_decode and eff_prefill, and the formulas. */
void plan_calib_print(FILE *f, const plan_calib *c);

#endif
