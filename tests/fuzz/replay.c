/*
 * Replay driver for the libFuzzer targets of tests/fuzz, for builds without
 * libFuzzer (the ordinary gcc build of `make check`).
 *
 * Every file named on the command line, or every file of a directory named
 * there, goes once through LLVMFuzzerTestOneInput, in name order. With no
 * argument the target's committed inputs are replayed: FUZZ_DIR/corpus/NAME
 * (must exist and hold at least one file) and FUZZ_DIR/regressions/NAME
 * (reproducers of fixed findings; may be absent). Output is TAP, one line
 * per input; a target that finds a broken invariant aborts, which fails the
 * test. The input about to run is named on stderr first, so the log of a
 * crashed run ends with the culprit.
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#ifndef FUZZ_NAME
#error "FUZZ_NAME (the target's name) must be defined"
#endif
#ifndef FUZZ_DIR
#error "FUZZ_DIR (the source folder tests/fuzz) must be defined"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv) __attribute__((weak));

typedef struct list {
    char **v;
    size_t n, cap;
} list;

static int list_add(list *l, const char *path)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 64;
        char **v = realloc(l->v, cap * sizeof *v);
        if (v == NULL) return -1;
        l->v = v;
        l->cap = cap;
    }
    if ((l->v[l->n] = strdup(path)) == NULL) return -1;
    l->n++;
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Add path: a file, or the files of a directory (not recursive, dot files
 * and README skipped), sorted. missing_ok: an absent path adds nothing.
 * Returns the number of files added, or -1 with a message on stderr. */
static int collect(list *l, const char *path, int missing_ok)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        if (missing_ok && errno == ENOENT) return 0;
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    if (!S_ISDIR(st.st_mode)) return list_add(l, path) == 0 ? 1 : -1;

    DIR *d = opendir(path);
    if (d == NULL) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t first = l->n;
    struct dirent *e;
    int rc = 0;
    while ((e = readdir(d)) != NULL) {
        char full[4096];
        if (e->d_name[0] == '.' || strcmp(e->d_name, "README") == 0) continue;
        snprintf(full, sizeof full, "%s/%s", path, e->d_name);
        if (stat(full, &st) != 0 || !S_ISREG(st.st_mode)) continue;
        if (list_add(l, full) != 0) {
            rc = -1;
            break;
        }
    }
    closedir(d);
    if (rc != 0) return -1;
    qsort(l->v + first, l->n - first, sizeof *l->v, by_name);
    return (int)(l->n - first);
}

/* The whole file in a buffer of exactly its size (so that a sanitizer build
 * sees a read past the end). NULL with a message on failure. */
static uint8_t *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;
    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0) {
        fprintf(stderr, "%s: %s\n", path, strerror(errno));
        if (f) fclose(f);
        return NULL;
    }
    buf = malloc(n ? (size_t)n : 1);
    if (buf == NULL || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fprintf(stderr, "%s: read error\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    *len = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    list l = {0};
    int rc = 0;

    if (LLVMFuzzerInitialize) LLVMFuzzerInitialize(&argc, &argv);
    if (argc > 1) {
        for (int i = 1; i < argc; i++)
            if (collect(&l, argv[i], 0) < 0) rc = 1;
    } else {
        char dir[4096];
        snprintf(dir, sizeof dir, "%s/corpus/%s", FUZZ_DIR, FUZZ_NAME);
        int n = collect(&l, dir, 0);
        if (n == 0) fprintf(stderr, "%s: no seed inputs\n", dir);
        if (n <= 0) rc = 1;
        snprintf(dir, sizeof dir, "%s/regressions/%s", FUZZ_DIR, FUZZ_NAME);
        if (collect(&l, dir, 1) < 0) rc = 1;
    }
    if (rc != 0) {
        printf("Bail out! %s: cannot list the inputs\n", FUZZ_NAME);
        goto done;
    }

    printf("1..%zu\n", l.n);
    fflush(stdout);
    for (size_t i = 0; i < l.n; i++) {
        size_t len = 0;
        uint8_t *buf = slurp(l.v[i], &len);
        const char *shown = strstr(l.v[i], "/tests/fuzz/");
        shown = shown ? shown + strlen("/tests/fuzz/") : l.v[i];
        if (buf == NULL) {
            printf("not ok %zu - %s: unreadable\n", i + 1, shown);
            rc = 1;
            continue;
        }
        fprintf(stderr, "# %s: %s (%zu bytes)\n", FUZZ_NAME, shown, len);
        LLVMFuzzerTestOneInput(buf, len);
        free(buf);
        printf("ok %zu - %s\n", i + 1, shown);
        fflush(stdout);
    }
done:
    for (size_t i = 0; i < l.n; i++) free(l.v[i]);
    free(l.v);
    return rc;
}
