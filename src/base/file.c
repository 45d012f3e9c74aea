#include "file.h"

#include "err.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

/* Opens path as a regular file; *size gets its length. Returns the fd or a
 * negative error code (message set). */
static int open_regular(const char *path, size_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return err_set(SOV_EIO, "cannot open '%s': %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return err_set(SOV_EIO, "cannot stat '%s': %s", path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return err_set(SOV_EIO, "'%s' is not a regular file", path);
    }
    *size = (size_t)st.st_size;
    return fd;
}

int file_map_open(file_map *m, const char *path)
{
    memset(m, 0, sizeof *m);
    size_t size;
    int fd = open_regular(path, &size);
    if (fd < 0)
        return fd;
    if (size > 0) {
        void *p = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (p == MAP_FAILED) {
            int e = errno;
            close(fd);
            return err_set(SOV_EIO, "cannot mmap '%s': %s", path, strerror(e));
        }
        m->data = p;
        m->size = size;
    }
    close(fd);
    return 0;
}

#define HUGE_ALIGN ((size_t)2 << 20)
#define READ_CHUNK ((size_t)64 << 20)

void *file_alloc_huge(uint64_t bytes, uint64_t *mapped)
{
    /* reserve 2 MiB more than needed and keep a 2 MiB-aligned window, so
     * every whole 2 MiB can be one huge page */
    const uint64_t len = (bytes + HUGE_ALIGN - 1) & ~(uint64_t)(HUGE_ALIGN - 1);
    *mapped = len;
    if (len < bytes || len + HUGE_ALIGN < len || len + HUGE_ALIGN > SIZE_MAX) {
        errno = EOVERFLOW;
        return NULL;
    }
    unsigned char *r =
        mmap(NULL, (size_t)(len + HUGE_ALIGN), PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (r == MAP_FAILED)
        return NULL;
    unsigned char *a = (unsigned char *)(((uintptr_t)r + HUGE_ALIGN - 1) & ~(uintptr_t)(HUGE_ALIGN - 1));
    if (a > r)
        munmap(r, (size_t)(a - r));
    if (a + len < r + len + HUGE_ALIGN)
        munmap(a + len, (size_t)(r + len + HUGE_ALIGN - (a + len)));
#ifdef MADV_HUGEPAGE
    madvise(a, (size_t)len, MADV_HUGEPAGE); /* a hint: without THP this is plain memory */
#endif
    return a;
}

int file_map_read(file_map *m, const char *path) { return file_map_read_progress(m, path, NULL); }

int file_map_read_progress(file_map *m, const char *path, progress *p)
{
    memset(m, 0, sizeof *m);
    size_t size;
    int fd = open_regular(path, &size), rc = 0;
    if (fd < 0)
        return fd;
    if (size == 0)
        goto done;
    uint64_t mapped;
    unsigned char *a = file_alloc_huge(size, &mapped);
    size_t len = (size_t)mapped;
    if (!a) {
        if (errno == EOVERFLOW)
            rc = err_set(SOV_ENOMEM, "'%s' is too large to read into memory", path);
        else
            rc = err_set(SOV_ENOMEM, "cannot allocate %zu MiB to read '%s': %s", len >> 20, path, strerror(errno));
        goto done;
    }
    const size_t chunk = p ? READ_CHUNK / 4 : READ_CHUNK; /* a bar moves every 16 MiB */
    progress_reset(p, NULL, 0, size);
    for (size_t got = 0; got < size;) {
        size_t want = size - got < chunk ? size - got : chunk;
        ssize_t n = pread(fd, a + got, want, (off_t)got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            rc = n < 0 ? err_set(SOV_EIO, "cannot read '%s': %s", path, strerror(errno))
                       : err_set(SOV_EIO, "cannot read '%s': file shrank to %zu bytes while being read", path, got);
            munmap(a, len);
            goto done;
        }
        got += (size_t)n;
        progress_set(p, got);
    }
    mprotect(a, len, PROT_READ); /* the image is read-only, as a mapping would be */
    m->data = a;
    m->size = size;
    m->region = a;
    m->region_size = len;
done:
    close(fd);
    return rc;
}

int file_map_protect(file_map *m, bool writable)
{
    if (!m->region)
        return err_set(SOV_EINVAL, "only an image read into memory can change its protection");
    if (mprotect(m->region, m->region_size, writable ? PROT_READ | PROT_WRITE : PROT_READ) != 0)
        return err_set(SOV_EIO, "cannot change the protection of a file image: %s", strerror(errno));
    return 0;
}

void file_unmap(file_map *m)
{
    if (m->region)
        munmap(m->region, m->region_size);
    else if (m->data)
        munmap((void *)m->data, m->size);
    memset(m, 0, sizeof *m);
}

int file_read_all(const char *path, char **out, size_t *len)
{
    *out = NULL;
    if (len)
        *len = 0;
    FILE *f = fopen(path, "rb");
    if (!f)
        return err_set(SOV_EIO, "cannot open '%s': %s", path, strerror(errno));
    size_t cap = 4096, n = 0;
    char *buf = malloc(cap);
    if (!buf)
        goto nomem;
    for (;;) {
        if (n + 1 >= cap) {
            char *nb = realloc(buf, cap * 2);
            if (!nb)
                goto nomem;
            buf = nb;
            cap *= 2;
        }
        size_t got = fread(buf + n, 1, cap - n - 1, f);
        n += got;
        if (got == 0)
            break;
    }
    if (ferror(f)) {
        free(buf);
        fclose(f);
        return err_set(SOV_EIO, "cannot read '%s'", path);
    }
    fclose(f);
    buf[n] = 0;
    *out = buf;
    if (len)
        *len = n;
    return 0;
nomem:
    free(buf);
    fclose(f);
    return err_set(SOV_ENOMEM, "out of memory reading '%s'", path);
}

char *file_path_join(const char *dir, const char *name)
{
    size_t n = strlen(dir) + strlen(name) + 2;
    char *p = malloc(n);
    if (p)
        snprintf(p, n, "%s/%s", dir, name);
    return p;
}
