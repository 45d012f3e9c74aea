#include "safetensors.h"

#include "../base/err.h"
#include "../base/file.h"
#include "../base/fp16.h"

#include <inttypes.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const struct {
    const char *name;
    size_t size;
} dtypes[ST_DTYPE_COUNT] = {
    [ST_F64] = {"F64", 8}, [ST_F32] = {"F32", 4}, [ST_F16] = {"F16", 2}, [ST_BF16] = {"BF16", 2},
    [ST_I64] = {"I64", 8}, [ST_I32] = {"I32", 4}, [ST_I16] = {"I16", 2}, [ST_I8] = {"I8", 1},
    [ST_U8] = {"U8", 1}, [ST_BOOL] = {"BOOL", 1}, [ST_F8_E4M3] = {"F8_E4M3", 1},
    [ST_F8_E5M2] = {"F8_E5M2", 1},
};

const char *st_dtype_name(int dtype)
{
    return dtype >= 0 && dtype < ST_DTYPE_COUNT ? dtypes[dtype].name : "unknown";
}

size_t st_dtype_size(int dtype)
{
    return dtype >= 0 && dtype < ST_DTYPE_COUNT ? dtypes[dtype].size : 0;
}

static int dtype_from_name(const char *s)
{
    for (int i = 0; i < ST_DTYPE_COUNT; i++)
        if (!strcmp(s, dtypes[i].name))
            return i;
    return -1;
}

void st_close(st_file *f)
{
    if (!f)
        return;
    for (size_t i = 0; i < f->n_tensors; i++)
        free(f->tensors[i].name);
    free(f->tensors);
    for (size_t i = 0; i < f->n_maps; i++)
        file_unmap(&f->maps[i]);
    free(f->maps);
    free(f);
}

const st_tensor *st_find(const st_file *f, const char *name)
{
    for (size_t i = 0; i < f->n_tensors; i++)
        if (!strcmp(f->tensors[i].name, name))
            return &f->tensors[i];
    return NULL;
}

/* Appends a copy of *t (name duplicated) to f. */
static int push_tensor(st_file *f, const st_tensor *t, const char *name)
{
    st_tensor *nt = realloc(f->tensors, (f->n_tensors + 1) * sizeof *nt);
    if (!nt)
        return err_set(SOV_ENOMEM, "out of memory");
    f->tensors = nt;
    char *nm = strdup(name);
    if (!nm)
        return err_set(SOV_ENOMEM, "out of memory");
    nt[f->n_tensors] = *t;
    nt[f->n_tensors].name = nm;
    f->n_tensors++;
    return 0;
}

/* Reads a JSON integer that must be in [0, INT64_MAX]. */
static bool json_nonneg(const json_t *j, int64_t *out)
{
    if (!json_is_integer(j) || json_integer_value(j) < 0)
        return false;
    *out = (int64_t)json_integer_value(j);
    return true;
}

/* Parses one tensor entry `name` -> obj of a shard whose data section is
 * data[0..data_size). */
static int parse_entry(st_file *f, const char *name, const json_t *obj, const uint8_t *data, uint64_t data_size)
{
    st_tensor t = {0};
    if (!*name)
        return err_set(SOV_EFORMAT, "tensor with an empty name");
    if (!json_is_object(obj))
        return err_set(SOV_EFORMAT, "tensor '%s': entry is not a JSON object", name);
    const json_t *jd = json_object_get(obj, "dtype");
    const json_t *js = json_object_get(obj, "shape");
    const json_t *jo = json_object_get(obj, "data_offsets");
    if (!json_is_string(jd))
        return err_set(SOV_EFORMAT, "tensor '%s': missing or non-string \"dtype\"", name);
    t.dtype = dtype_from_name(json_string_value(jd));
    if (t.dtype < 0)
        return err_set(SOV_EFORMAT, "tensor '%s': unknown dtype '%s'", name, json_string_value(jd));
    if (!json_is_array(js))
        return err_set(SOV_EFORMAT, "tensor '%s': missing or non-array \"shape\"", name);
    size_t nd = json_array_size(js);
    if (nd > ST_MAX_DIMS)
        return err_set(SOV_EUNSUPPORTED, "tensor '%s': %zu dimensions (at most %d supported)", name, nd, ST_MAX_DIMS);
    t.n_dims = (int)nd;
    t.nel = 1;
    for (size_t d = 0; d < nd; d++) {
        int64_t v;
        if (!json_nonneg(json_array_get(js, d), &v))
            return err_set(SOV_EFORMAT, "tensor '%s': shape[%zu] is not a non-negative integer", name, d);
        if (v && t.nel > INT64_MAX / v)
            return err_set(SOV_EFORMAT, "tensor '%s': shape overflows", name);
        t.shape[d] = v;
        t.nel *= v;
    }
    int64_t b, e;
    if (!json_is_array(jo) || json_array_size(jo) != 2 || !json_nonneg(json_array_get(jo, 0), &b) ||
        !json_nonneg(json_array_get(jo, 1), &e))
        return err_set(SOV_EFORMAT, "tensor '%s': \"data_offsets\" is not [begin, end] with non-negative integers", name);
    if (e < b)
        return err_set(SOV_EFORMAT, "tensor '%s': data_offsets end %" PRId64 " < begin %" PRId64, name, e, b);
    if ((uint64_t)e > data_size)
        return err_set(SOV_EFORMAT, "tensor '%s': data_offsets [%" PRId64 ", %" PRId64 ") past the end of the %" PRIu64
                       "-byte data section", name, b, e, data_size);
    uint64_t es = dtypes[t.dtype].size;
    if ((uint64_t)t.nel > UINT64_MAX / es || (uint64_t)(e - b) != (uint64_t)t.nel * es)
        return err_set(SOV_EFORMAT, "tensor '%s': %" PRId64 " bytes of data for %" PRId64 " %s elements",
                       name, e - b, t.nel, dtypes[t.dtype].name);
    t.nbytes = (uint64_t)(e - b);
    t.data = data + b;
    return push_tensor(f, &t, name);
}

/* Parses the shard image base[0..size) and appends its tensors and aliases. */
static int parse_shard(st_file *f, const uint8_t *base, uint64_t size)
{
    json_t *root = NULL;
    json_error_t jerr;
    int rc = 0;
    if (size < 8)
        return err_set(SOV_EFORMAT, "file too small for a safetensors header (%" PRIu64 " bytes)", size);
    uint64_t hlen = 0;
    for (int i = 0; i < 8; i++)
        hlen |= (uint64_t)base[i] << (8 * i);
    if (hlen > size - 8)
        return err_set(SOV_EFORMAT, "header length %" PRIu64 " exceeds the %" PRIu64 " bytes after it (truncated?)",
                       hlen, size - 8);
    if (hlen < 2)
        return err_set(SOV_EFORMAT, "header length %" PRIu64 " is too small for a JSON object", hlen);
    const uint8_t *data = base + 8 + hlen;
    uint64_t data_size = size - 8 - hlen;
    root = json_loadb((const char *)base + 8, (size_t)hlen, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return err_set(SOV_EFORMAT, "header is not valid JSON: %s (line %d, column %d)", jerr.text, jerr.line,
                       jerr.column);
    if (!json_is_object(root)) {
        rc = err_set(SOV_EFORMAT, "header is not a JSON object");
        goto out;
    }
    size_t first = f->n_tensors;
    const char *key;
    json_t *val;
    json_object_foreach(root, key, val) {
        if (!strcmp(key, "__metadata__"))
            continue;
        if ((rc = parse_entry(f, key, val, data, data_size)))
            goto out;
    }
    const json_t *meta = json_object_get(root, "__metadata__");
    if (meta && !json_is_object(meta)) {
        rc = err_set(SOV_EFORMAT, "\"__metadata__\" is not a JSON object");
        goto out;
    }
    if (meta) {
        json_object_foreach((json_t *)meta, key, val) {
            if (!json_is_string(val) || json_object_get(root, key))
                continue;
            const char *target = json_string_value(val);
            const st_tensor *tt = NULL;
            for (size_t i = first; i < f->n_tensors; i++)
                if (!f->tensors[i].alias_of && !strcmp(f->tensors[i].name, target))
                    tt = &f->tensors[i];
            if (!tt || !*key)
                continue; /* ordinary metadata such as "format": "pt" */
            st_tensor a = *tt;
            size_t ti = (size_t)(tt - f->tensors);
            if ((rc = push_tensor(f, &a, key)))
                goto out;
            f->tensors[f->n_tensors - 1].alias_of = f->tensors[ti].name;
        }
    }
out:
    json_decref(root);
    return rc;
}

static int add_map(st_file *f, file_map m)
{
    file_map *nm = realloc(f->maps, (f->n_maps + 1) * sizeof *nm);
    if (!nm)
        return err_set(SOV_ENOMEM, "out of memory");
    f->maps = nm;
    f->maps[f->n_maps++] = m;
    return 0;
}

int st_open_mem(st_file **out, const void *data, size_t size)
{
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(SOV_ENOMEM, "out of memory");
    int rc = parse_shard(f, data, size);
    if (rc) {
        st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

/* Maps path and appends its tensors to f. */
static int open_into(st_file *f, const char *path)
{
    file_map m;
    int rc = file_map_open(&m, path);
    if (rc)
        return rc;
    if ((rc = add_map(f, m))) {
        file_unmap(&m);
        return rc;
    }
    size_t before = f->n_tensors;
    if ((rc = parse_shard(f, m.data, m.size)))
        return err_set(rc, "%s: %s", path, err_msg());
    /* names must stay unique across shards */
    for (size_t i = before; i < f->n_tensors; i++)
        for (size_t j = 0; j < before; j++)
            if (!strcmp(f->tensors[i].name, f->tensors[j].name))
                return err_set(SOV_EFORMAT, "%s: tensor '%s' also appears in an earlier shard", path,
                               f->tensors[i].name);
    return 0;
}

int st_open(st_file **out, const char *path)
{
    *out = NULL;
    st_file *f = calloc(1, sizeof *f);
    if (!f)
        return err_set(SOV_ENOMEM, "out of memory");
    int rc = open_into(f, path);
    if (rc) {
        st_close(f);
        return rc;
    }
    *out = f;
    return 0;
}

static bool file_exists(const char *path)
{
    FILE *fp = fopen(path, "rb");
    if (!fp)
        return false;
    fclose(fp);
    return true;
}

/* Opens the shards named in the index JSON at idx_path (inside dir). */
static int open_index(st_file *f, const char *dir, const char *idx_path)
{
    json_error_t jerr;
    char *shard = NULL;
    const char **files = NULL;
    size_t n_files = 0;
    int rc = 0;
    json_t *root = json_load_file(idx_path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root)
        return err_set(SOV_EFORMAT, "%s: %s (line %d)", idx_path, jerr.text, jerr.line);
    const json_t *wm = json_object_get(root, "weight_map");
    if (!json_is_object(wm)) {
        rc = err_set(SOV_EFORMAT, "%s: missing \"weight_map\" object", idx_path);
        goto out;
    }
    files = calloc(json_object_size(wm) + 1, sizeof *files);
    if (!files) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto out;
    }
    const char *key;
    json_t *val;
    json_object_foreach((json_t *)wm, key, val) {
        if (!json_is_string(val)) {
            rc = err_set(SOV_EFORMAT, "%s: weight_map entry '%s' is not a file name", idx_path, key);
            goto out;
        }
        const char *fn = json_string_value(val);
        if (!*fn || fn[0] == '/' || strstr(fn, "..")) {
            rc = err_set(SOV_EFORMAT, "%s: shard name '%s' is not a plain file name in the folder", idx_path, fn);
            goto out;
        }
        bool seen = false;
        for (size_t i = 0; i < n_files && !seen; i++)
            seen = !strcmp(files[i], fn);
        if (!seen)
            files[n_files++] = fn;
    }
    if (n_files == 0) {
        rc = err_set(SOV_EFORMAT, "%s: weight_map is empty", idx_path);
        goto out;
    }
    for (size_t i = 0; i < n_files; i++) {
        if (!(shard = file_path_join(dir, files[i]))) {
            rc = err_set(SOV_ENOMEM, "out of memory");
            goto out;
        }
        if ((rc = open_into(f, shard)))
            goto out;
        free(shard);
        shard = NULL;
    }
    json_object_foreach((json_t *)wm, key, val) {
        if (!st_find(f, key)) {
            rc = err_set(SOV_EFORMAT, "%s: tensor '%s' is not in shard '%s'", idx_path, key, json_string_value(val));
            goto out;
        }
    }
out:
    free(shard);
    free(files);
    json_decref(root);
    return rc;
}

int st_open_dir(st_file **out, const char *dir)
{
    *out = NULL;
    int rc;
    char *idx = file_path_join(dir, "model.safetensors.index.json");
    char *single = file_path_join(dir, "model.safetensors");
    st_file *f = calloc(1, sizeof *f);
    if (!idx || !single || !f) {
        rc = err_set(SOV_ENOMEM, "out of memory");
        goto fail;
    }
    if (file_exists(idx))
        rc = open_index(f, dir, idx);
    else if (file_exists(single))
        rc = open_into(f, single);
    else
        rc = err_set(SOV_ENOTFOUND, "'%s' has neither model.safetensors nor model.safetensors.index.json", dir);
    if (rc)
        goto fail;
    free(idx);
    free(single);
    *out = f;
    return 0;
fail:
    free(idx);
    free(single);
    st_close(f);
    return rc;
}

int st_read_f32(const st_tensor *t, int64_t first, int64_t n, float *dst)
{
    if (first < 0 || n < 0 || first > t->nel || n > t->nel - first)
        return err_set(SOV_EINVAL, "tensor '%s': elements [%" PRId64 ", +%" PRId64 ") out of range (%" PRId64 ")",
                       t->name, first, n, t->nel);
    const uint8_t *p = (const uint8_t *)t->data + (size_t)first * dtypes[t->dtype].size;
    switch (t->dtype) {
    case ST_F32:
        memcpy(dst, p, (size_t)n * 4);
        return 0;
    case ST_F64:
        for (int64_t i = 0; i < n; i++) {
            double d;
            memcpy(&d, p + 8 * i, 8);
            dst[i] = (float)d;
        }
        return 0;
    case ST_F16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = fp16_to_f32(h);
        }
        return 0;
    case ST_BF16:
        for (int64_t i = 0; i < n; i++) {
            uint16_t h;
            memcpy(&h, p + 2 * i, 2);
            dst[i] = bf16_to_f32(h);
        }
        return 0;
    default:
        return err_set(SOV_EUNSUPPORTED, "tensor '%s': dtype %s cannot be read as floats (F64/F32/F16/BF16 only)",
                       t->name, dtypes[t->dtype].name);
    }
}
