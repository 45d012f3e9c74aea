/* gguf_write: in-memory builder for GGUF v3 files.
 *
 * Usage: gguf_writer_new(), set metadata (gguf_w_set_*; setting a key again
 * replaces its value in place, keeping the key order), add tensors
 * (gguf_w_add_tensor*: data is NOT copied, it is read or produced when the
 * file is written), then gguf_w_write() once or more, and gguf_writer_free().
 *
 * Values are encoded to their on-disk little-endian form as they are set, so
 * key and string arguments need not outlive the call. Tensor data is written
 * in the order tensors were added, each padded to the alignment
 * (`general.alignment`, default 32; gguf_w_set_alignment changes it and
 * records the key). All functions return 0 or a negative SOV_E* code after
 * err_set(). */
#ifndef SOV_GGUF_WRITE_H
#define SOV_GGUF_WRITE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gguf.h"

typedef struct gguf_writer gguf_writer;

/* Produces a tensor's bytes at write time: fills dst[0..nbytes) and returns
 * 0, or a SOV_E* code (after err_set) to abort the write. */
typedef int (*gguf_fill_fn)(void *ctx, void *dst, uint64_t nbytes);

/* Creates an empty builder (no metadata, no tensors, alignment 32) in *out,
 * owned by the caller (gguf_writer_free). Errors: SOV_ENOMEM. */
int gguf_writer_new(gguf_writer **out);

/* Frees the builder, its encoded metadata and every buffer handed over with
 * gguf_w_add_tensor_owned. NULL is fine. */
void gguf_writer_free(gguf_writer *w);

/* Scalar setters. key: non-empty NUL-terminated string. Errors: SOV_EINVAL
 * (empty key; general.alignment not a power of two or not uint32),
 * SOV_ENOMEM. */
int gguf_w_set_u8(gguf_writer *w, const char *key, uint8_t v);
int gguf_w_set_i8(gguf_writer *w, const char *key, int8_t v);
int gguf_w_set_u16(gguf_writer *w, const char *key, uint16_t v);
int gguf_w_set_i16(gguf_writer *w, const char *key, int16_t v);
int gguf_w_set_u32(gguf_writer *w, const char *key, uint32_t v);
int gguf_w_set_i32(gguf_writer *w, const char *key, int32_t v);
int gguf_w_set_f32(gguf_writer *w, const char *key, float v);
int gguf_w_set_bool(gguf_writer *w, const char *key, bool v);
int gguf_w_set_u64(gguf_writer *w, const char *key, uint64_t v);
int gguf_w_set_i64(gguf_writer *w, const char *key, int64_t v);
int gguf_w_set_f64(gguf_writer *w, const char *key, double v);

/* String value: NUL-terminated s, or s[0..len) (may hold NULs). */
int gguf_w_set_str(gguf_writer *w, const char *key, const char *s);
int gguf_w_set_strn(gguf_writer *w, const char *key, const char *s, size_t len);

/* Array of n scalars of elem_type (any scalar gguf_vtype) stored in host
 * order at data (n * gguf_vtype_size(elem_type) bytes; bool elements are
 * bytes 0/1). n may be 0 (data may then be NULL). Errors: SOV_EINVAL (type
 * not scalar, bool byte not 0/1), SOV_ENOMEM. */
int gguf_w_set_arr(gguf_writer *w, const char *key, uint32_t elem_type, const void *data, uint64_t n);

/* Array of n strings: strs[i] NUL-terminated, or with lens != NULL the
 * bytes strs[i][0..lens[i]). */
int gguf_w_set_arr_str(gguf_writer *w, const char *key, const char *const *strs,
                       const size_t *lens, uint64_t n);

/* Sets key to a value read by the gguf reader (any type, nested arrays
 * included). Errors: SOV_EINVAL (invalid value), SOV_ENOMEM. */
int gguf_w_set_value(gguf_writer *w, const char *key, const gguf_value *v);

/* Copies metadata key `key` of the open file g into w. Errors: SOV_ENOTFOUND
 * (g lacks it), else as gguf_w_set_value. */
int gguf_w_copy_kv(gguf_writer *w, const gguf *g, const char *key);

/* Copies every metadata key of g except general.alignment (the writer's own
 * alignment applies). Errors as gguf_w_set_value. */
int gguf_w_copy_all_kv(gguf_writer *w, const gguf *g);

/* Removes key if present (not an error if absent). */
void gguf_w_remove(gguf_writer *w, const char *key);

/* True if key has been set. */
bool gguf_w_has(const gguf_writer *w, const char *key);

/* Sets the data alignment (power of two, 1..1M) and records it as
 * general.alignment (uint32). Errors: SOV_EINVAL, SOV_ENOMEM. */
int gguf_w_set_alignment(gguf_writer *w, uint32_t alignment);

/* Adds a tensor whose nbytes bytes at data are written at write time (data
 * must stay valid until the last gguf_w_write). ne[0] is the row length
 * (GGUF order), n_dims 1..4, type a known sov_type. nbytes must equal the
 * size implied by type and ne. Errors: SOV_EINVAL (bad name, dims, type,
 * size, duplicate name), SOV_ENOMEM. */
int gguf_w_add_tensor(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                      const int64_t *ne, const void *data, uint64_t nbytes);

/* As gguf_w_add_tensor, but takes ownership of the malloc'd buffer data: it
 * is freed by gguf_writer_free, also when this call fails. */
int gguf_w_add_tensor_owned(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                            const int64_t *ne, void *data, uint64_t nbytes);

/* As gguf_w_add_tensor, but the bytes are produced by fill(ctx, buf, nbytes)
 * into a scratch buffer at write time (ctx must stay valid until then). */
int gguf_w_add_tensor_fn(gguf_writer *w, const char *name, uint32_t type, uint32_t n_dims,
                         const int64_t *ne, uint64_t nbytes, gguf_fill_fn fill, void *ctx);

/* Number of metadata keys / tensors added so far. */
uint64_t gguf_w_n_kv(const gguf_writer *w);
uint64_t gguf_w_n_tensors(const gguf_writer *w);

/* Writes the GGUF v3 file to path (created or truncated). On failure the
 * partial file is removed. Errors: SOV_EIO, SOV_ENOMEM, or a fill
 * callback's code. */
int gguf_w_write(gguf_writer *w, const char *path);

#endif
