/* gguf: zero-copy reader for GGUF v2/v3 model files.
 *
 * The file is mmap'ed; strings and tensor data point into the mapping, so
 * they stay valid until gguf_close(). Every count, length, offset and tensor
 * extent is checked against the file size while parsing; a malformed file
 * yields SOV_EFORMAT with a message naming what is wrong. */
#ifndef SOV_GGUF_H
#define SOV_GGUF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/file.h"

enum gguf_vtype {
    GGUF_UINT8 = 0,
    GGUF_INT8 = 1,
    GGUF_UINT16 = 2,
    GGUF_INT16 = 3,
    GGUF_UINT32 = 4,
    GGUF_INT32 = 5,
    GGUF_FLOAT32 = 6,
    GGUF_BOOL = 7,
    GGUF_STRING = 8,
    GGUF_ARRAY = 9,
    GGUF_UINT64 = 10,
    GGUF_INT64 = 11,
    GGUF_FLOAT64 = 12,
    GGUF_VTYPE_COUNT
};

#define GGUF_MAX_DIMS 4
#define GGUF_DEFAULT_ALIGNMENT 32

/* A length-delimited string inside the mapping (NOT NUL-terminated). */
typedef struct gguf_str {
    const char *ptr;
    uint64_t len;
} gguf_str;

typedef struct gguf_value gguf_value;
struct gguf_value {
    uint32_t type; /* enum gguf_vtype */
    union {
        uint64_t u64;  /* UINT8/16/32/64 */
        int64_t i64;   /* INT8/16/32/64 */
        double f64;    /* FLOAT32/64 */
        bool b;        /* BOOL */
        gguf_str str;  /* STRING */
        struct {
            uint32_t type;     /* element type */
            uint64_t n;        /* element count */
            const uint8_t *raw; /* scalar elements: little-endian, maybe unaligned */
            gguf_str *strs;    /* STRING elements (n entries) */
            gguf_value *vals;  /* ARRAY elements (n nested arrays) */
        } arr;
    } v;
};

typedef struct gguf_kv {
    gguf_str key;
    gguf_value val;
} gguf_kv;

typedef struct gguf_tensor {
    gguf_str name;
    uint32_t n_dims;
    int64_t ne[GGUF_MAX_DIMS]; /* ne[0] is the contiguous (row) dimension; unused dims are 1 */
    uint32_t type;             /* enum sov_type */
    uint64_t offset;           /* relative to the data section */
    uint64_t nbytes;
    const void *data;          /* points into the mapping */
    uint8_t layout;            /* enum kern_layout: KL_PLAIN as parsed; KL_X8 or
                                  KL_R16 once model_load_mode rewrote the data */
} gguf_tensor;

typedef struct gguf {
    uint32_t version;
    uint64_t n_kv;
    gguf_kv *kv;
    uint64_t n_tensors;
    gguf_tensor *tensors;
    uint64_t alignment;
    uint64_t data_offset;   /* file offset of the tensor data section */
    const uint8_t *base;    /* start of the file image */
    uint64_t size;          /* file size */
    file_map map;           /* owned mapping (empty for gguf_open_mem) */
    void *allocs;           /* internal allocation list */
} gguf;

/* Opens and validates `path` (mmap, zero-copy). On success *out is owned by
 * the caller (gguf_close). Errors: SOV_EIO, SOV_EFORMAT, SOV_ENOMEM. */
int gguf_open(gguf **out, const char *path);

/* gguf_open with a choice of how the file gets into memory: use_mmap maps it
 * (file_map_open), otherwise it is read into huge-page memory
 * (file_map_read: faster to stream, costs a copy at open). */
int gguf_load(gguf **out, const char *path, bool use_mmap);

/* gguf_load with bar p (may be NULL) following the read into memory
 * (file_map_read_progress); a mapping reads nothing and moves no bar. */
int gguf_load_progress(gguf **out, const char *path, bool use_mmap, progress *p);

/* Parses an in-memory image (not copied; it must outlive *out). */
int gguf_open_mem(gguf **out, const void *data, size_t size);

/* Frees everything; NULL is fine. */
void gguf_close(gguf *g);

/* Value for `key`, or NULL. */
const gguf_value *gguf_get(const gguf *g, const char *key);

/* Typed getters: 0 on success, SOV_ENOTFOUND if absent, SOV_EFORMAT if the
 * value has an incompatible type (message names the key). Integer getters
 * accept any integer type that fits; f64 accepts any number. */
int gguf_get_i64(const gguf *g, const char *key, int64_t *out);
int gguf_get_f64(const gguf *g, const char *key, double *out);
int gguf_get_bool(const gguf *g, const char *key, bool *out);
int gguf_get_str(const gguf *g, const char *key, gguf_str *out);

/* Array value for key whose elements have type elem_type, or NULL (absent or
 * other element type). */
const gguf_value *gguf_get_arr(const gguf *g, const char *key, uint32_t elem_type);

/* Element i of a scalar array converted to int64/double (caller checks i < n). */
int64_t gguf_arr_i64(const gguf_value *arr, uint64_t i);
double gguf_arr_f64(const gguf_value *arr, uint64_t i);

/* Tensor named `name`, or NULL. */
const gguf_tensor *gguf_find_tensor(const gguf *g, const char *name);

/* Elements in a tensor (product of ne). */
int64_t gguf_tensor_nelements(const gguf_tensor *t);

/* True if s equals the NUL-terminated c string. */
bool gguf_str_eq(gguf_str s, const char *c);

/* Copies s into buf (cap bytes) NUL-terminated, truncating; returns buf. */
char *gguf_str_copy(gguf_str s, char *buf, size_t cap);

/* Size in bytes of a scalar value type, 0 for STRING/ARRAY/unknown. */
size_t gguf_vtype_size(uint32_t type);

/* Name of a value type ("uint32", "array", ...). */
const char *gguf_vtype_name(uint32_t type);

#endif
