/* store_meta: what `sov ls` says about one model file, read from its GGUF
 * header (the file is mapped; only the header and tensor table are read). */
#ifndef SOV_STORE_META_H
#define SOV_STORE_META_H

#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct store_meta {
    char arch[64];       /* general.architecture ("llama"), "" if absent */
    char quant[24];      /* general.file_type's name as llama.cpp calls it ("q4_k_m"), else main_type */
    char main_type[16];  /* the tensor type holding most bytes of the matrices (>= 2-D tensors) */
    int64_t file_type;   /* general.file_type, -1 if absent */
    uint64_t params;     /* elements of all tensors */
    uint64_t n_tensors;
} store_meta;

/* Fills *m from the GGUF file at path. Errors: those of gguf_open
 * (SOV_EIO, SOV_EFORMAT, SOV_ENOMEM). */
int store_meta_read(const char *path, store_meta *m);

/* llama.cpp's name of a general.file_type (LLAMA_FTYPE_MOSTLY_*) in lower
 * case ("q4_k_m", "f16"), or NULL for a number it does not have. */
const char *store_ftype_name(int64_t ftype);

/* One `sov ls` line into buf (no newline): name padded to name_w, size,
 * then arch, quant and params from m, or "(partial download)" for a .part
 * and "(unreadable: why)" when m is NULL with why. Returns buf. The header
 * line is store_meta_line(buf, cap, w, NULL, NULL, NULL). */
char *store_meta_line(char *buf, size_t cap, int name_w, const store_item *it, const store_meta *m, const char *why);

/* params as "292.5K", "1.10B" into buf; returns buf. */
char *store_meta_params(char *buf, size_t cap, uint64_t params);

#endif
