/*
 * Durable file operations (see fsutil.h).
 */
#include "config.h"

#include "base/fsutil.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int fs_mkdirs(const char *path, mode_t mode)
{
    char buf[PATH_MAX];
    size_t n = strlen(path);
    if (n == 0 || n >= sizeof buf) {
        errno = ENAMETOOLONG;
        return -1;
    }
    memcpy(buf, path, n + 1);
    for (char *p = buf + 1; *p; p++) {
        if (*p != '/') continue;
        *p = '\0';
        if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    if (mkdir(buf, mode) != 0 && errno != EEXIST) return -1;
    struct stat st;
    if (stat(buf, &st) != 0) return -1;
    if (!S_ISDIR(st.st_mode)) {
        errno = ENOTDIR;
        return -1;
    }
    return 0;
}

int fs_sync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

int fs_pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t w = pwrite(fd, p, len, off);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (w == 0) {
            errno = EIO;
            return -1;
        }
        p += w;
        len -= (size_t)w;
        off += w;
    }
    return 0;
}

int fs_commit(int fd, const char *tmp, const char *dst, const char *dir)
{
    if (fsync(fd) != 0) goto fail;
    int rc = close(fd);
    fd = -1;
    if (rc != 0 || rename(tmp, dst) != 0) goto fail;
    return fs_sync_dir(dir);
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    errno = e;
    return -1;
}

int fs_write_atomic(const char *dir, const char *name, const void *buf, size_t len)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX.tmp", dir, name) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s", dir, name) >= (int)sizeof dst) {
        errno = ENAMETOOLONG;
        return -1;
    }
    int fd = mkstemps(tmp, 4);
    if (fd < 0) return -1;
    if (fs_pwrite_all(fd, buf, len, 0) != 0) {
        int e = errno;
        close(fd);
        unlink(tmp);
        errno = e;
        return -1;
    }
    return fs_commit(fd, tmp, dst, dir);
}

static int copy_fd(int in, int out)
{
    char buf[65536];
    off_t off = 0;
    for (;;) {
        ssize_t r = read(in, buf, sizeof buf);
        if (r < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        if (r == 0) return 0;
        if (fs_pwrite_all(out, buf, (size_t)r, off) != 0) return -1;
        off += r;
    }
}

int fs_move(const char *src, const char *dst_dir)
{
    char dst[PATH_MAX], tmp[PATH_MAX];
    const char *base = strrchr(src, '/');
    base = base ? base + 1 : src;
    if (snprintf(dst, sizeof dst, "%s/%s", dst_dir, base) >= (int)sizeof dst ||
        snprintf(tmp, sizeof tmp, "%s/.%s.XXXXXX.tmp", dst_dir, base) >= (int)sizeof tmp) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (rename(src, dst) == 0) return fs_sync_dir(dst_dir);
    if (errno != EXDEV) return -1;
    int in = open(src, O_RDONLY | O_CLOEXEC), out = -1;
    if (in < 0) return -1;
    out = mkstemps(tmp, 4);
    if (out < 0) goto fail;
    if (copy_fd(in, out) != 0) goto fail;
    close(in);
    if (fs_commit(out, tmp, dst, dst_dir) != 0) return -1;
    return unlink(src);
fail:;
    int e = errno;
    close(in);
    if (out >= 0) close(out);
    unlink(tmp);
    errno = e;
    return -1;
}

int fs_remove_temporaries(const char *dir)
{
    DIR *d = opendir(dir);
    int n = 0;
    if (d == NULL) return 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || strcmp(e->d_name + l - 4, ".tmp") != 0) continue;
        char p[PATH_MAX];
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p) continue;
        if (unlink(p) == 0) n++;
    }
    closedir(d);
    return n;
}
