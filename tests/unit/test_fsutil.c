/*
 * Durable file operations (host/base/fsutil.c): folders made whole, files that
 * appear complete or not at all, moves within and across file systems, and
 * the clean-up of temporaries a crash left.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/fsutil.h"

/* ------------------------------------------------------------ helpers */

static char *make_tmpdir(const char *base)
{
    char *p = malloc(PATH_MAX);
    assert_non_null(p);
    snprintf(p, PATH_MAX, "%s/vx-fsutil.XXXXXX", base);
    assert_non_null(mkdtemp(p));
    return p;
}

static void rm_rf(const char *p)
{
    char cmd[PATH_MAX + 16];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", p);
    assert_int_equal(system(cmd), 0);
}

static void write_file(const char *p, const char *text)
{
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static char *read_file(const char *p)
{
    static char buf[4096];
    FILE *f = fopen(p, "r");
    if (f == NULL) return NULL;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

/* Names in dir, sorted, joined by spaces. */
static char *listing(const char *dir)
{
    static char out[4096];
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort);
    out[0] = '\0';
    for (int i = 0; i < n; i++) {
        if (strcmp(names[i]->d_name, ".") && strcmp(names[i]->d_name, "..")) {
            if (out[0]) strcat(out, " ");
            strcat(out, names[i]->d_name);
        }
        free(names[i]);
    }
    free(names);
    return out;
}

static const char *tmpbase(void)
{
    const char *t = getenv("TMPDIR");
    return t && *t ? t : "/tmp";
}

/* ------------------------------------------------------------ tests */

static void mkdirs_makes_every_missing_folder_and_accepts_existing_ones(void **state)
{
    (void)state;
    char *d = make_tmpdir(tmpbase()), p[PATH_MAX];
    snprintf(p, sizeof p, "%s/a/b/c", d);
    assert_int_equal(fs_mkdirs(p, 0750), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_true(S_ISDIR(st.st_mode));
    assert_int_equal(fs_mkdirs(p, 0750), 0);
    rm_rf(d);
    free(d);
}

static void mkdirs_fails_with_enotdir_when_a_file_is_in_the_way(void **state)
{
    (void)state;
    char *d = make_tmpdir(tmpbase()), f[PATH_MAX], p[PATH_MAX];
    snprintf(f, sizeof f, "%s/file", d);
    write_file(f, "x");
    snprintf(p, sizeof p, "%s/file/sub", d);
    errno = 0;
    assert_int_equal(fs_mkdirs(p, 0750), -1);
    assert_int_equal(errno, ENOTDIR);
    assert_int_equal(fs_mkdirs(f, 0750), -1);
    assert_int_equal(errno, ENOTDIR);
    rm_rf(d);
    free(d);
}

static void write_atomic_leaves_the_content_and_no_temporary(void **state)
{
    (void)state;
    char *d = make_tmpdir(tmpbase()), p[PATH_MAX];
    assert_int_equal(fs_write_atomic(d, "x.json", "{\"a\":1}", 7), 0);
    snprintf(p, sizeof p, "%s/x.json", d);
    assert_string_equal(read_file(p), "{\"a\":1}");
    assert_int_equal(fs_write_atomic(d, "x.json", "second", 6), 0);
    assert_string_equal(read_file(p), "second");
    assert_string_equal(listing(d), "x.json");
    rm_rf(d);
    free(d);
}

static void write_atomic_into_a_missing_folder_fails_and_creates_nothing(void **state)
{
    (void)state;
    char *d = make_tmpdir(tmpbase()), p[PATH_MAX];
    snprintf(p, sizeof p, "%s/missing", d);
    errno = 0;
    assert_int_equal(fs_write_atomic(p, "x", "y", 1), -1);
    assert_int_equal(errno, ENOENT);
    assert_string_equal(listing(d), "");
    rm_rf(d);
    free(d);
}

static void pwrite_all_past_the_end_leaves_a_hole_of_zeros(void **state)
{
    (void)state;
    char *d = make_tmpdir(tmpbase()), p[PATH_MAX];
    snprintf(p, sizeof p, "%s/raw", d);
    int fd = open(p, O_RDWR | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(fs_pwrite_all(fd, "ab", 2, 10), 0);
    char buf[12];
    assert_int_equal(pread(fd, buf, sizeof buf, 0), 12);
    for (int i = 0; i < 10; i++) assert_int_equal(buf[i], 0);
    assert_memory_equal(buf + 10, "ab", 2);
    close(fd);
    rm_rf(d);
    free(d);
}

static void move_within_a_file_system_renames(void **state)
{
    (void)state;
    char *a = make_tmpdir(tmpbase()), *b = make_tmpdir(tmpbase()), src[PATH_MAX], dst[PATH_MAX];
    snprintf(src, sizeof src, "%s/job.wav", a);
    snprintf(dst, sizeof dst, "%s/job.wav", b);
    write_file(src, "RIFF....");
    assert_int_equal(fs_move(src, b), 0);
    assert_int_equal(access(src, F_OK), -1);
    assert_string_equal(read_file(dst), "RIFF....");
    rm_rf(a);
    rm_rf(b);
    free(a);
    free(b);
}

static void move_across_file_systems_copies_durably_and_removes_the_source(void **state)
{
    (void)state;
    /* /dev/shm is a tmpfs: a different file system from the test's TMPDIR
     * on this machine, so rename() fails with EXDEV and the copy path runs. */
    struct stat s1, s2;
    const char *other = stat("/dev/shm", &s1) == 0 && S_ISDIR(s1.st_mode) ? "/dev/shm" : tmpbase();
    char *a = make_tmpdir(other), *b = make_tmpdir(tmpbase()), src[PATH_MAX], dst[PATH_MAX];
    assert_int_equal(stat(a, &s1), 0);
    assert_int_equal(stat(b, &s2), 0);
    if (s1.st_dev == s2.st_dev) print_message("# note: %s and %s share a file system; only rename is exercised\n", a, b);
    snprintf(src, sizeof src, "%s/job.json", a);
    snprintf(dst, sizeof dst, "%s/job.json", b);
    char big[3000];
    memset(big, 'z', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    write_file(src, big);
    assert_int_equal(fs_move(src, b), 0);
    assert_int_equal(access(src, F_OK), -1);
    assert_string_equal(read_file(dst), big);
    assert_string_equal(listing(b), "job.json");
    rm_rf(a);
    rm_rf(b);
    free(a);
    free(b);
}

static void move_of_a_missing_file_fails_with_enoent(void **state)
{
    (void)state;
    char *a = make_tmpdir(tmpbase()), src[PATH_MAX];
    snprintf(src, sizeof src, "%s/none.wav", a);
    errno = 0;
    assert_int_equal(fs_move(src, a), -1);
    assert_int_equal(errno, ENOENT);
    rm_rf(a);
    free(a);
}

static void remove_temporaries_removes_only_tmp_files(void **state)
{
    (void)state;
    char *d = make_tmpdir(tmpbase()), p[PATH_MAX];
    const char *names[] = {".a.wav.Xy12ab.tmp", "b.tmp", "keep.wav", "keep.json"};
    for (int i = 0; i < 4; i++) {
        snprintf(p, sizeof p, "%s/%s", d, names[i]);
        write_file(p, "x");
    }
    assert_int_equal(fs_remove_temporaries(d), 2);
    assert_string_equal(listing(d), "keep.json keep.wav");
    rm_rf(d);
    free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(mkdirs_makes_every_missing_folder_and_accepts_existing_ones),
        cmocka_unit_test(mkdirs_fails_with_enotdir_when_a_file_is_in_the_way),
        cmocka_unit_test(write_atomic_leaves_the_content_and_no_temporary),
        cmocka_unit_test(write_atomic_into_a_missing_folder_fails_and_creates_nothing),
        cmocka_unit_test(pwrite_all_past_the_end_leaves_a_hole_of_zeros),
        cmocka_unit_test(move_within_a_file_system_renames),
        cmocka_unit_test(move_across_file_systems_copies_durably_and_removes_the_source),
        cmocka_unit_test(move_of_a_missing_file_fails_with_enoent),
        cmocka_unit_test(remove_temporaries_removes_only_tmp_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
