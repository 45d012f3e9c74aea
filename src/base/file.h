/* file: read-only memory maps and whole-file reads. */
#ifndef SOV_FILE_H
#define SOV_FILE_H

#include <stddef.h>

typedef struct file_map {
    const unsigned char *data; /* NULL for an empty file */
    size_t size;
} file_map;

/* Maps `path` read-only into *m. Returns 0 or SOV_EIO (message names the
 * path and the system error). Release with file_unmap(). */
int file_map_open(file_map *m, const char *path);

/* Unmaps; safe on a zeroed or already-closed map. */
void file_unmap(file_map *m);

/* Reads the whole file into a malloc'd, NUL-terminated buffer (*out, owned by
 * caller; *len excludes the NUL). Returns 0, SOV_EIO or SOV_ENOMEM. */
int file_read_all(const char *path, char **out, size_t *len);

/* Returns malloc'd "dir/name" (owned by caller), or NULL when out of memory. */
char *file_path_join(const char *dir, const char *name);

#endif
