/* safetensors: zero-copy reader for Hugging Face .safetensors checkpoints.
 *
 * A file is an 8-byte little-endian header length N, N bytes of JSON
 * (tensor name -> {dtype, shape, data_offsets: [begin, end)} plus an
 * optional "__metadata__" object of strings), then the data section that
 * the offsets are relative to. Every field is validated against the file
 * size; a malformed file yields SOV_EFORMAT naming the problem.
 *
 * `__metadata__` entries whose value names a tensor of the same file and
 * whose key is not itself a tensor are treated as aliases (TinyStories
 * stores `lm_head.weight` and maps `model.embed_tokens.weight` to it).
 *
 * A checkpoint folder holds `model.safetensors`, or the shards listed in
 * `model.safetensors.index.json` ("weight_map": name -> file); st_open_dir
 * opens either as one tensor set. Tensor data points into the mappings and
 * stays valid until st_close(). */
#ifndef SOV_SAFETENSORS_H
#define SOV_SAFETENSORS_H

#include <stddef.h>
#include <stdint.h>

#include "../base/file.h"

enum st_dtype {
    ST_F64, ST_F32, ST_F16, ST_BF16, ST_I64, ST_I32, ST_I16, ST_I8, ST_U8, ST_BOOL,
    ST_F8_E4M3, ST_F8_E5M2, ST_DTYPE_COUNT
};

#define ST_MAX_DIMS 8

typedef struct st_tensor {
    char *name;
    int dtype;                 /* enum st_dtype */
    int n_dims;                /* 0 for a scalar */
    int64_t shape[ST_MAX_DIMS]; /* PyTorch order: shape[n_dims-1] is contiguous */
    int64_t nel;               /* product of shape */
    uint64_t nbytes;
    const void *data;          /* into the mapping; may be unaligned */
    const char *alias_of;      /* name of the stored tensor for an alias, else NULL */
} st_tensor;

typedef struct st_file {
    st_tensor *tensors;
    size_t n_tensors;
    file_map *maps;            /* one per opened shard */
    size_t n_maps;
} st_file;

/* Opens one .safetensors file. *out owned by the caller (st_close).
 * Errors: SOV_EIO, SOV_EFORMAT, SOV_EUNSUPPORTED (more than ST_MAX_DIMS
 * dims), SOV_ENOMEM. Messages name the path. */
int st_open(st_file **out, const char *path);

/* Parses an in-memory image (not copied; it must outlive *out). */
int st_open_mem(st_file **out, const void *data, size_t size);

/* Opens a checkpoint folder: DIR/model.safetensors.index.json if present
 * (every shard it names, tensor names must be unique across shards), else
 * DIR/model.safetensors. Errors as st_open, plus SOV_ENOTFOUND (neither
 * file exists) and SOV_EFORMAT (bad index, tensor missing from its shard). */
int st_open_dir(st_file **out, const char *dir);

/* Frees everything; NULL is fine. */
void st_close(st_file *f);

/* Tensor (or alias) named name, or NULL. */
const st_tensor *st_find(const st_file *f, const char *name);

/* "F32", "BF16", ... */
const char *st_dtype_name(int dtype);

/* Bytes per element of dtype (0 if unknown). */
size_t st_dtype_size(int dtype);

/* Converts elements [first, first + n) of a F64/F32/F16/BF16 tensor to f32
 * in dst. Errors: SOV_EUNSUPPORTED (other dtypes), SOV_EINVAL (range past
 * the tensor). */
int st_read_f32(const st_tensor *t, int64_t first, int64_t n, float *dst);

#endif
