/* file: read-only file images in memory (mapped, or read into huge-page
 * memory) and whole-file reads. */
#ifndef SOV_FILE_H
#define SOV_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "progress.h"

typedef struct file_map {
    const unsigned char *data; /* NULL for an empty file */
    size_t size;
    void *region;       /* file_map_read: the anonymous mapping holding data */
    size_t region_size; /* its length (0 for file_map_open) */
} file_map;

/* Maps `path` read-only into *m (shared with the page cache, 4 KiB pages).
 * Returns 0 or SOV_EIO (message names the path and the system error).
 * Release with file_unmap(). */
int file_map_open(file_map *m, const char *path);

/* Reads the whole of `path` into private anonymous memory, 2 MiB-aligned and
 * advised for transparent huge pages, then made read-only: a one-time copy
 * that streams faster than a 4 KiB-page file mapping afterwards (fewer TLB
 * misses). Same result shape as file_map_open. Errors: SOV_EIO (open, read,
 * or the file shrank while being read), SOV_ENOMEM. Release with
 * file_unmap(). */
int file_map_read(file_map *m, const char *path);

/* file_map_read driving bar p (may be NULL) from 0 to the file size as the
 * bytes come in (progress_reset with the file size, progress_set). */
int file_map_read_progress(file_map *m, const char *path, progress *p);

/* Private anonymous read-write memory of `bytes` rounded up to 2 MiB
 * (*mapped gets that length), 2 MiB-aligned and advised for transparent
 * huge pages, zeroed; NULL when the size overflows (errno EOVERFLOW) or
 * the system refuses (errno from mmap). Release with munmap(p, *mapped). */
void *file_alloc_huge(uint64_t bytes, uint64_t *mapped);

/* Makes a file_map_read image writable (writable) or read-only again, so its
 * owner can rewrite it in place (the model loader repacks weights). Errors:
 * SOV_EINVAL for a file mapping or an empty map (they stay read-only),
 * SOV_EIO if the system refuses. */
int file_map_protect(file_map *m, bool writable);

/* Releases either kind; safe on a zeroed or already-closed map. */
void file_unmap(file_map *m);

/* Reads the whole file into a malloc'd, NUL-terminated buffer (*out, owned by
 * caller; *len excludes the NUL). Returns 0, SOV_EIO or SOV_ENOMEM. */
int file_read_all(const char *path, char **out, size_t *len);

/* Returns malloc'd "dir/name" (owned by caller), or NULL when out of memory. */
char *file_path_join(const char *dir, const char *name);

#endif
