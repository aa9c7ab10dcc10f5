/*
 * sink_faulty: a recording sink whose failures a test chooses, for the
 * upload queue's retries, dead letters and shutdown (tests/integration/
 * recording.sh). Uploads that succeed copy the file to <dir>/<name>, so a
 * test can compare what arrived byte for byte.
 *
 * Keys: dir (where uploads land), fail_first (the first N uploads fail),
 * fail_all, error (unavailable: retryable | auth: not retryable), delay
 * (every upload takes this long: a slow or hung sink). A file named
 * <dir>/.fail-all, while it exists, fails every upload: a test can "fix" the
 * sink without restarting the daemon.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <voxray/plugin.h>

typedef struct fs_inst {
    char dir[PATH_MAX];
    long fail_first;
    int fail_all;
    int auth;
    long delay_ms;
    pthread_mutex_t mu;
    long calls;
} fs_inst;

static const vx_config_key keys[] = {
    {"dir", VX_CFG_STRING, NULL, "where successful uploads are copied", 0, 4096, NULL, VX_CFG_REQUIRED},
    {"fail_first", VX_CFG_INT, "0", "the first N uploads fail", 0, 1000000, NULL, 0},
    {"fail_all", VX_CFG_BOOL, "false", "every upload fails", 0, 0, NULL, 0},
    {"error", VX_CFG_ENUM, "unavailable", "how uploads fail", 0, 0, "unavailable|auth", 0},
    {"delay", VX_CFG_DURATION, "0", "time every upload takes", 0, 600000, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0},
};

/* "250ms", "2s", "1m" or a bare number of milliseconds. */
static long parse_ms(const char *v)
{
    if (v == NULL) return 0;
    char *end;
    double x = strtod(v, &end);
    if (strcmp(end, "s") == 0) x *= 1000;
    else if (strcmp(end, "m") == 0) x *= 60000;
    return (long)x;
}

static int fs_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst, vx_error *err)
{
    fs_inst *s = calloc(1, sizeof *s);
    (void)err;
    if (s == NULL) return VX_ENOMEM;
    snprintf(s->dir, sizeof s->dir, "%s", host->config_get(h, "dir"));
    s->fail_first = atol(host->config_get(h, "fail_first"));
    const char *fa = host->config_get(h, "fail_all");
    s->fail_all = fa && (strcmp(fa, "true") == 0 || strcmp(fa, "yes") == 0 || strcmp(fa, "on") == 0 || strcmp(fa, "1") == 0);
    s->auth = strcmp(host->config_get(h, "error"), "auth") == 0;
    s->delay_ms = parse_ms(host->config_get(h, "delay"));
    pthread_mutex_init(&s->mu, NULL);
    (void)cfg;
    *inst = s;
    return VX_OK;
}

static void fs_shutdown(void *inst)
{
    fs_inst *s = inst;
    pthread_mutex_destroy(&s->mu);
    free(s);
}

static int mkdirs(char *p)
{
    for (char *q = p + 1; *q; q++) {
        if (*q != '/') continue;
        *q = '\0';
        int rc = mkdir(p, 0755);
        *q = '/';
        if (rc != 0 && errno != EEXIST) return -1;
    }
    return 0;
}

static int fs_upload(void *inst, const vx_recording *rec, vx_error *err)
{
    fs_inst *s = inst;
    char dst[PATH_MAX + 256], tmp[PATH_MAX + 264], flag[PATH_MAX + 16];
    pthread_mutex_lock(&s->mu);
    long n = ++s->calls;
    pthread_mutex_unlock(&s->mu);
    if (s->delay_ms > 0) {
        struct timespec ts = {s->delay_ms / 1000, (s->delay_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    snprintf(flag, sizeof flag, "%s/.fail-all", s->dir);
    if (s->fail_all || n <= s->fail_first || access(flag, F_OK) == 0) {
        err->code = s->auth ? VX_EAUTH : VX_EUNAVAIL;
        err->retryable = !s->auth;
        err->upstream_status = s->auth ? 403 : 503;
        snprintf(err->msg, sizeof err->msg, "%s", s->auth ? "403 InvalidAccessKeyId (injected)" : "503 SlowDown (injected)");
        return err->code;
    }
    if (rec->struct_size < VX_RECORDING_SIZE_1_2 || rec->name == NULL) {
        err->code = VX_EINVAL;
        snprintf(err->msg, sizeof err->msg, "no object name");
        return VX_EINVAL;
    }
    snprintf(dst, sizeof dst, "%s/%s", s->dir, rec->name);
    snprintf(tmp, sizeof tmp, "%s.part", dst);
    int in = open(rec->path, O_RDONLY), out = -1;
    if (in < 0 || mkdirs(dst) != 0 || (out = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644)) < 0) goto fail;
    char buf[65536];
    ssize_t r;
    while ((r = read(in, buf, sizeof buf)) > 0)
        if (write(out, buf, (size_t)r) != r) goto fail;
    if (r < 0 || close(out) != 0) {
        out = -1;
        goto fail;
    }
    out = -1;
    close(in);
    if (rename(tmp, dst) != 0) goto fail2;
    return VX_OK;
fail:
    if (in >= 0) close(in);
    if (out >= 0) close(out);
fail2:
    unlink(tmp);
    err->code = VX_EUNAVAIL;
    err->retryable = 1;
    snprintf(err->msg, sizeof err->msg, "copy to %.150s: %.60s", dst, strerror(errno));
    return VX_EUNAVAIL;
}

static const vx_sink_vtable sink = {
    .struct_size = sizeof(vx_sink_vtable),
    .upload = fs_upload,
};

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_SINK,
    .name = "sink_faulty",
    .version = "1.0.0",
    .description = "test sink with chosen failures",
    .config = keys,
    .init = fs_init,
    .shutdown = fs_shutdown,
    .sink = &sink,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host)
{
    (void)host;
    return &info;
}
