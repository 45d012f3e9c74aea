/* store: the models folder (`sov pull`, `sov ls`, `sov rm`, `-m NAME`).
 *
 * One flat folder of GGUF files: $SOV_MODELS when set, else
 * $XDG_DATA_HOME/sov/models, else ~/.local/share/sov/models. A model's NAME
 * is its file name without ".gguf"; a download in progress is NAME.gguf.part
 * beside it. Commands that take a model file also take a NAME from the
 * folder (store_resolve). */
#ifndef SOV_STORE_H
#define SOV_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define STORE_PATH_MAX 4096
#define STORE_NAME_MAX 200 /* bytes of a file name in the folder, ".part" included */

/* The models folder into buf (cap bytes): $SOV_MODELS when set and not
 * empty, else $XDG_DATA_HOME/sov/models for an absolute XDG_DATA_HOME,
 * else $HOME (or the password database's home)/.local/share/sov/models.
 * Returns buf, or NULL after err_set(SOV_EINVAL) when there is no home or
 * the path does not fit. The folder need not exist. */
const char *store_dir(char *buf, size_t cap);

/* Creates dir and its missing parents (mode 0755). Errors: SOV_EIO (the
 * path and the system's reason). */
int store_mkdir(const char *dir);

/* Whether name can be a file name in the folder: 1 to STORE_NAME_MAX - 5
 * bytes, printable, no '/' or '\\', not starting with '.'. */
bool store_name_ok(const char *name);

/* The file of model `name` in dir (NULL: store_dir()): dir/name when that
 * is a regular file, else dir/name.gguf. Path into buf. Errors:
 * SOV_EINVAL (not a name, see store_name_ok; no folder), SOV_ENOTFOUND
 * ("no model NAME in DIR"). */
int store_find(const char *dir, const char *name, char *buf, size_t cap);

/* What a command's model argument means: arg itself when it contains a '/'
 * or names an existing file; else the model of that name in the folder
 * (store_find). Returns arg or buf; NULL after err_set: SOV_ENOTFOUND ("no
 * file NAME here and no model NAME in DIR"), SOV_EINVAL. */
const char *store_resolve(const char *arg, char *buf, size_t cap);

typedef struct store_item {
    char name[STORE_NAME_MAX];  /* "stories260K" (file without .gguf / .gguf.part) */
    char file[STORE_NAME_MAX];  /* "stories260K.gguf" */
    char path[STORE_PATH_MAX];  /* dir/file */
    uint64_t size;              /* bytes on disk */
    bool partial;               /* a .part file: a download not finished */
} store_item;

/* The models of dir (NULL: store_dir()): its regular files named *.gguf
 * and *.gguf.part, sorted by name (a model before its .part). *out is
 * malloc'd (free it; NULL when none), *n their count; a missing folder has
 * none. Errors: SOV_EIO, SOV_ENOMEM, SOV_EINVAL (no folder). */
int store_list(const char *dir, store_item **out, size_t *n);

/* Removes model `name` (NAME or NAME.gguf) from dir (NULL: store_dir()):
 * its file and the .part of an unfinished download of it. Returns the
 * number of files removed (1 or 2). Errors: SOV_EINVAL (not a name),
 * SOV_ENOTFOUND ("no model NAME in DIR"), SOV_EIO. */
int store_remove(const char *dir, const char *name);

#endif
