/*
 * rec_file: the recording sink that writes to a folder: a local disk, an NFS
 * export, a Kubernetes volume.
 *
 * Layout. A file goes to <dir>/<name>, where name is the one the host chose
 * ("2026/12/04/sess_abc.wav", ABI 1.2) or, from an older host, the same name
 * derived here from the UTC date of started_unix_ms, the session id and the
 * content type. The date folders are created as needed with dir_mode (a
 * folder another upload created a moment earlier is fine). dir itself is
 * never created: it must exist, so that a volume that is not mounted shows as
 * an error instead of recordings quietly filling the root disk.
 *
 * Atomicity. The file is copied into a hidden temporary file next to its
 * final place (".<base>.XXXXXX.tmp", which no "*.wav" or "*.json" listing
 * matches), flushed with fsync, renamed over <dir>/<name> and the folder is
 * fsynced. A reader sees no file or the whole file, never part of one; a
 * repeated upload of the same name replaces it (idempotent). On any failure
 * the temporary file is removed. Only a crash of the process, or a power cut,
 * during a copy can leave a ".*.tmp" file behind; it never looks like a
 * recording and may be deleted by age. With fsync = false the renames are
 * still atomic but a power cut may lose files already reported as uploaded.
 *
 * Failure (the vx_error of upload; every message names the path and the
 * system's reason):
 *   - disk full, quota, file size limit, I/O error, the folder missing (not
 *     mounted), NFS trouble: VX_EUNAVAIL, retryable (space may be freed);
 *   - permission refused, read-only file system: VX_EAUTH, not retryable;
 *   - the local file missing or unreadable, a name with a ".." component or
 *     a leading "/": VX_EINVAL, not retryable;
 *   - a date folder that cannot be made because a file occupies its name:
 *     VX_EUNAVAIL, not retryable (someone has to clear it; the host keeps
 *     the recording in its dead-letter folder meanwhile);
 *   - out of memory: VX_ENOMEM, retryable.
 * Init fails only on bad configuration (a relative dir, a malformed mode);
 * a missing or read-only dir is logged and reported by health, and uploads
 * fail retryably until it is fixed.
 *
 * Blocking. Uploads run on the host's upload workers and block on the file
 * system. On a hard NFS mount whose server is gone they block until it is
 * back, and the host cannot cancel them: use a soft mount (timeo, retrans)
 * if a bound matters more than patience. health stats the folder, so it can
 * block the same way.
 *
 * Threads. Uploads share only the outcome of the last one, kept under a
 * mutex for health and for logging when uploads start and stop failing.
 */
#define _GNU_SOURCE /* mkostemps */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <voxray/plugin.h>

#define RF_VERSION "1.0.0"
#define RF_BUFSZ (256 * 1024)
#define RF_NAME_MAX 1024
#define RF_TMP_SUFFIX ".XXXXXX.tmp"

typedef struct rf_sink {
    const vx_host_api *api;
    vx_host *h;
    char *dir; /* absolute, without trailing '/' except for "/" itself */
    int fsync;
    mode_t file_mode, dir_mode;

    pthread_mutex_t mu; /* guards the fields below */
    int have_last;
    int last_rc;
    uint64_t last_ns;
    char last_msg[256]; /* the name on success, the error otherwise */
} rf_sink;

static const vx_config_key rf_config[] = {
    {"dir", VX_CFG_STRING, "/var/lib/voxray/recordings",
     "absolute path of the folder recordings go to (<dir>/YYYY/MM/DD/<session>.wav); "
     "it must exist, only the date folders are created", 0, 3072, NULL, 0},
    {"fsync", VX_CFG_BOOL, "true",
     "fsync every file and its folder before reporting it uploaded, so a power cut "
     "cannot lose it", 0, 0, NULL, 0},
    {"file_mode", VX_CFG_STRING, "0640",
     "permissions of the files, octal (not filtered by the umask)", 0, 4, NULL, 0},
    {"dir_mode", VX_CFG_STRING, "0750",
     "permissions of the date folders it creates, octal (not filtered by the umask)",
     0, 4, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

/* ---------------------------------------------------------------- errors */

static void rf_seterr(vx_error *err, int code, int retryable, const char *fmt, ...)
    VX_PRINTF(4, 5);

static void rf_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = retryable;
    err->upstream_status = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* The code for a failed operation on the destination, by its errno. What is
 * not listed (ENOSPC, EDQUOT, EFBIG, EIO, ENOENT, ESTALE, ETIMEDOUT, EMFILE,
 * ...) may pass once space is freed or the volume is back: retryable. */
static int rf_dest_code(int e, int *retryable) {
    switch (e) {
    case EACCES:
    case EPERM:
    case EROFS:
        *retryable = 0;
        return VX_EAUTH;
    case ENOMEM:
        *retryable = 1;
        return VX_ENOMEM;
    case ENOTDIR:
    case EISDIR:
    case EEXIST:
    case ELOOP:
    case ENAMETOOLONG:
        /* Something occupies the name of a folder or of the file. */
        *retryable = 0;
        return VX_EUNAVAIL;
    default:
        *retryable = 1;
        return VX_EUNAVAIL;
    }
}

/* The code for a failure to read the local recording. Missing, refused or
 * broken files stay so: not retryable. Running out of descriptors or
 * memory passes. */
static int rf_src_code(int e, int *retryable) {
    switch (e) {
    case ENOMEM:
        *retryable = 1;
        return VX_ENOMEM;
    case EMFILE:
    case ENFILE:
    case EAGAIN:
    case EINTR:
        *retryable = 1;
        return VX_EUNAVAIL;
    default:
        *retryable = 0;
        return VX_EINVAL;
    }
}

/* Fill err for errno e on the destination; "rec_file: <what> <path>: <reason>". */
static int rf_dest_fail(vx_error *err, int e, const char *what, const char *path) {
    int retryable, code = rf_dest_code(e, &retryable);

    rf_seterr(err, code, retryable, "rec_file: %s %s: %s", what, path, strerror(e));
    return code;
}

static int rf_src_fail(vx_error *err, int e, const char *what, const char *path) {
    int retryable, code = rf_src_code(e, &retryable);

    rf_seterr(err, code, retryable, "rec_file: %s recording %s: %s", what, path, strerror(e));
    return code;
}

/* When errno e (ENOENT) is because dir itself is missing, say so, with the
 * likely reason, and return 1 (err filled: VX_EUNAVAIL, retryable). */
static int rf_dir_gone(const rf_sink *s, int e, vx_error *err) {
    struct stat st;

    if (e != ENOENT || stat(s->dir, &st) == 0) return 0;
    rf_seterr(err, VX_EUNAVAIL, 1, "rec_file: folder %s does not exist (volume not mounted?): %s",
              s->dir, strerror(ENOENT));
    return 1;
}

/* ---------------------------------------------------------------- names */

/* ASCII only, whatever the process locale says. */
static int rf_name_char(int c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '.' || c == '_' || c == '-';
}

/* NULL when name is safe to put below dir: relative, [A-Za-z0-9._/-] only,
 * no empty, "." or ".." component, at most RF_NAME_MAX - 1 bytes. Otherwise
 * what is wrong with it. */
static const char *rf_name_problem(const char *name) {
    const char *p = name, *c;

    if (!*name) return "it is empty";
    if (*name == '/') return "it starts with '/'";
    if (strlen(name) >= RF_NAME_MAX) return "it is too long";
    for (c = name; *c; c++)
        if (*c != '/' && !rf_name_char((unsigned char)*c))
            return "it has a character outside [A-Za-z0-9._/-]";
    while (*p) {
        size_t n = strcspn(p, "/");
        if (n == 0) return "it has an empty component";
        if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
            return "it has a '.' or '..' component";
        p += n;
        if (*p == '/' && *++p == '\0') return "it ends with '/'";
    }
    return NULL;
}

/* The file name extension for a content type ("audio/wav; x=y" too), or
 * NULL for one this sink does not know. */
static const char *rf_extension(const char *type) {
    size_t n;

    if (!type) return NULL;
    n = strcspn(type, "; \t");
    if (n == 9 && strncasecmp(type, "audio/wav", n) == 0) return ".wav";
    if (n == 16 && strncasecmp(type, "application/json", n) == 0) return ".json";
    return NULL;
}

/* The name a 1.2 host would have chosen: "YYYY/MM/DD/<session id><ext>",
 * the date of started_unix_ms in UTC. Returns VX_OK or fills err. */
static int rf_derive_name(const vx_recording *rec, char *buf, size_t len, vx_error *err) {
    const char *ext = rf_extension(rec->content_type);
    int64_t ms = rec->started_unix_ms;
    time_t t = (time_t)(ms / 1000 - (ms % 1000 < 0)); /* floor, also before 1970 */
    struct tm tm;

    if (!ext) {
        rf_seterr(err, VX_ENOTSUP, 0, "rec_file: content type '%s' is neither audio/wav nor "
                  "application/json", rec->content_type ? rec->content_type : "(none)");
        return VX_ENOTSUP;
    }
    if (!rec->session_id || !*rec->session_id) {
        rf_seterr(err, VX_EINVAL, 0, "rec_file: recording %s has no session id", rec->path);
        return VX_EINVAL;
    }
    for (const char *c = rec->session_id; *c; c++) {
        if (!rf_name_char((unsigned char)*c)) {
            rf_seterr(err, VX_EINVAL, 0, "rec_file: session id '%.64s' has a character outside "
                      "[A-Za-z0-9._-]", rec->session_id);
            return VX_EINVAL;
        }
    }
    if (!gmtime_r(&t, &tm) ||
        snprintf(buf, len, "%04d/%02d/%02d/%s%s", tm.tm_year + 1900, tm.tm_mon + 1,
                 tm.tm_mday, rec->session_id, ext) >= (int)len) {
        rf_seterr(err, VX_EINVAL, 0, "rec_file: no file name for session '%.64s' started at "
                  "%lld ms", rec->session_id, (long long)ms);
        return VX_EINVAL;
    }
    return VX_OK;
}

/* The checked name of rec below dir, into buf. Returns VX_OK or fills err
 * (VX_EINVAL, not retryable, for a name that would leave dir). */
static int rf_name(const vx_recording *rec, char *buf, size_t len, vx_error *err) {
    const char *why;
    int rc;

    if (rec->struct_size >= VX_RECORDING_SIZE_1_2 && rec->name) {
        snprintf(buf, len, "%s", rec->name);
        if ((why = rf_name_problem(rec->name)) != NULL) {
            rf_seterr(err, VX_EINVAL, 0, "rec_file: refusing name '%.128s': %s", rec->name, why);
            return VX_EINVAL;
        }
        return VX_OK;
    }
    if ((rc = rf_derive_name(rec, buf, len, err)) != VX_OK) return rc;
    if ((why = rf_name_problem(buf)) != NULL) {
        rf_seterr(err, VX_EINVAL, 0, "rec_file: refusing name '%.128s': %s", buf, why);
        return VX_EINVAL;
    }
    return VX_OK;
}

/* ---------------------------------------------------------------- files */

/* fsync a folder. A file system that cannot sync folders (EINVAL) is taken
 * as having nothing to sync. Returns 0 or -1 with errno set. */
static int rf_sync_dir(const char *path) {
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), rc, e;

    if (fd < 0) return -1;
    rc = fsync(fd);
    e = errno;
    close(fd);
    if (rc != 0 && e == EINVAL) rc = 0;
    errno = e;
    return rc;
}

/* Make the folders between s->dir and the last component of path (a full
 * path below s->dir, whose first dirlen bytes are s->dir). A folder this
 * call creates gets dir_mode and, with fsync, its parent is synced so the
 * new entry survives a power cut. A folder that already exists, made by a
 * concurrent upload or long ago, is fine. Returns 0, or the errno of the
 * failure with the folder that failed left in path cut at that folder (the
 * caller's copy is then only good for the message). */
static int rf_mkdirs(rf_sink *s, char *path, size_t dirlen) {
    struct stat st;
    char *slash = strrchr(path, '/');

    *slash = '\0';
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        *slash = '/';
        return 0; /* the usual case: today's folder exists */
    }
    *slash = '/';
    for (char *p = strchr(path + dirlen + 1, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdir(path, s->dir_mode) == 0) {
            char *up = strrchr(path, '/');
            /* mkdir applied the umask; the operator asked for dir_mode. */
            if (chmod(path, s->dir_mode) != 0) return errno;
            if (s->fsync) {
                int rc;
                *up = '\0';
                rc = rf_sync_dir(up == path ? "/" : path);
                *up = '/';
                if (rc != 0) return errno;
            }
        } else if (errno == EEXIST) {
            if (stat(path, &st) != 0) return errno;
            if (!S_ISDIR(st.st_mode)) return ENOTDIR;
        } else {
            return errno;
        }
        *p = '/';
    }
    return 0;
}

/* write(2) all of buf. Returns 0 or -1 with errno set. */
static int rf_write_all(int fd, const char *buf, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, buf, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---------------------------------------------------------------- outcome */

/* Remember the outcome of an upload for health; log when uploads start
 * failing and when they work again (per-call details go through vx_error). */
static void rf_remember(rf_sink *s, int rc, const char *name, const vx_error *err) {
    int was_failing;

    pthread_mutex_lock(&s->mu);
    was_failing = s->have_last && s->last_rc != VX_OK;
    s->have_last = 1;
    s->last_rc = rc;
    s->last_ns = s->api->now_ns();
    snprintf(s->last_msg, sizeof(s->last_msg), "%.255s", rc == VX_OK ? name : err->msg);
    pthread_mutex_unlock(&s->mu);

    if (rc != VX_OK && !was_failing)
        s->api->log(s->h, VX_LOG_WARN, "upload failed: %s", err->msg);
    else if (rc == VX_OK && was_failing)
        s->api->log(s->h, VX_LOG_INFO, "uploads work again (%s)", name);
}

/* ---------------------------------------------------------------- vtable */

/* See the file comment for the steps and what each failure returns. */
static int rf_upload(void *inst, const vx_recording *rec, vx_error *err) {
    rf_sink *s = inst;
    char name[RF_NAME_MAX], path[PATH_MAX], tmp[PATH_MAX], where[PATH_MAX];
    char *buf = NULL, *slash;
    struct stat src, dst;
    int in = -1, out = -1, tmp_made = 0, e, rc;
    size_t dirlen = strcmp(s->dir, "/") == 0 ? 0 : strlen(s->dir);
    uint64_t copied = 0;
    vx_error scratch;

    if (!err) err = &scratch; /* the host always passes one; be safe anyway */
    memset(&scratch, 0, sizeof(scratch));
    if (!rec || !rec->path) {
        rc = VX_EINVAL;
        rf_seterr(err, rc, 0, "rec_file: upload without a recording path");
        goto done;
    }
    if ((rc = rf_name(rec, name, sizeof(name), err)) != VX_OK) goto done;
    if (snprintf(path, sizeof(path), "%.*s/%s", (int)dirlen, s->dir, name) >= (int)sizeof(path)) {
        rc = VX_EINVAL;
        rf_seterr(err, rc, 0, "rec_file: %s/%s is longer than PATH_MAX", s->dir, name);
        goto done;
    }

    if ((in = open(rec->path, O_RDONLY | O_CLOEXEC | O_NOCTTY)) < 0) {
        rc = rf_src_fail(err, errno, "cannot open", rec->path);
        goto done;
    }
    if (fstat(in, &src) != 0) {
        rc = rf_src_fail(err, errno, "cannot stat", rec->path);
        goto done;
    }
    if (!S_ISREG(src.st_mode)) {
        rc = VX_EINVAL;
        rf_seterr(err, rc, 0, "rec_file: recording %s is not a regular file", rec->path);
        goto done;
    }
    /* The host deletes its local file after VX_OK: never let that file be
     * the destination itself (dir pointed at the host's own spool). */
    if (stat(path, &dst) == 0 && dst.st_dev == src.st_dev && dst.st_ino == src.st_ino) {
        rc = VX_EINVAL;
        rf_seterr(err, rc, 0, "rec_file: recording %s is already %s: dir must not be the "
                  "host's recording folder", rec->path, path);
        goto done;
    }
    if (!(buf = malloc(RF_BUFSZ))) {
        rc = VX_ENOMEM;
        rf_seterr(err, rc, 1, "rec_file: out of memory copying %s", rec->path);
        goto done;
    }

    memcpy(where, path, sizeof(path));
    if ((e = rf_mkdirs(s, where, dirlen)) != 0) {
        rc = rf_dir_gone(s, e, err) ? err->code : rf_dest_fail(err, e, "cannot make folder", where);
        goto done;
    }

    slash = strrchr(path, '/');
    if (snprintf(tmp, sizeof(tmp), "%.*s/.%s" RF_TMP_SUFFIX, (int)(slash - path), path,
                 slash + 1) >= (int)sizeof(tmp)) {
        rc = VX_EINVAL;
        rf_seterr(err, rc, 0, "rec_file: temporary name for %s is longer than PATH_MAX", path);
        goto done;
    }
    if ((out = mkostemps(tmp, 4, O_CLOEXEC)) < 0) {
        /* ENOENT with dir in place: a cleanup removed the date folder just
         * now; the retry makes it again. */
        e = errno;
        *slash = '\0';
        rc = rf_dir_gone(s, e, err) ? err->code
                                    : rf_dest_fail(err, e, "cannot create a file in", path);
        *slash = '/';
        goto done;
    }
    tmp_made = 1;
    /* mkstemp made it 0600; the operator asked for file_mode. */
    if (fchmod(out, s->file_mode) != 0) {
        rc = rf_dest_fail(err, errno, "cannot set the mode of", tmp);
        goto done;
    }

    for (;;) {
        ssize_t n = read(in, buf, RF_BUFSZ);
        if (n < 0) {
            if (errno == EINTR) continue;
            rc = rf_src_fail(err, errno, "cannot read", rec->path);
            goto done;
        }
        if (n == 0) break;
        if (rf_write_all(out, buf, (size_t)n) != 0) {
            rc = rf_dest_fail(err, errno, "writing", path);
            goto done;
        }
        copied += (uint64_t)n;
    }
    if (s->fsync && fsync(out) != 0) {
        rc = rf_dest_fail(err, errno, "syncing", path);
        goto done;
    }
    /* NFS reports write errors (quota, space) at close at the latest. */
    e = close(out) == 0 ? 0 : errno;
    out = -1;
    if (e != 0) {
        rc = rf_dest_fail(err, e, "writing", path);
        goto done;
    }
    if (rename(tmp, path) != 0) {
        rc = rf_dest_fail(err, errno, "cannot rename into place", path);
        goto done;
    }
    tmp_made = 0;
    if (s->fsync) {
        /* The file is complete under its name already; a failure here only
         * means its entry may not survive a power cut: retry the upload. */
        *slash = '\0';
        if (rf_sync_dir(dirlen || slash != path ? path : "/") != 0)
            rc = rf_dest_fail(err, errno, "syncing folder", path);
        *slash = '/';
        if (rc != VX_OK) goto done;
    }
    rc = VX_OK;
    if (s->api->log_enabled(s->h, VX_LOG_DEBUG))
        s->api->log(s->h, VX_LOG_DEBUG, "wrote %s (%llu bytes)", path,
                    (unsigned long long)copied);

done:
    if (out >= 0) close(out);
    if (tmp_made) unlink(tmp);
    if (in >= 0) close(in);
    free(buf);
    rf_remember(s, rc, rc == VX_OK ? name : "", err);
    return rc;
}

static const vx_sink_vtable rf_vtable = {
    .struct_size = sizeof(vx_sink_vtable),
    .upload = rf_upload,
};

/* ---------------------------------------------------------------- lifecycle */

/* An octal permission like "0640" or "640", at most 0777. 0 or -1. */
static int rf_parse_mode(const char *v, mode_t *out) {
    char *end;
    long m;

    if (!v || !*v || strspn(v, "01234567") != strlen(v)) return -1;
    m = strtol(v, &end, 8);
    if (*end || m < 0 || m > 0777) return -1;
    *out = (mode_t)m;
    return 0;
}


static void rf_free(rf_sink *s) {
    if (!s) return;
    pthread_mutex_destroy(&s->mu);
    free(s->dir);
    free(s);
}

static int rf_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                   vx_error *err) {
    rf_sink *s = calloc(1, sizeof(*s));
    const char *v;
    struct stat st;
    size_t len;
    int code = VX_EINVAL;

    (void)cfg;
    if (!s || pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        rf_seterr(err, VX_ENOMEM, 0, "rec_file: out of memory");
        return VX_ENOMEM;
    }
    s->api = host;
    s->h = h;

    v = host->config_get(h, "dir");
    if (!v) v = "/var/lib/voxray/recordings";
    if (v[0] != '/') {
        rf_seterr(err, code, 0, "rec_file: dir '%.200s' is not an absolute path; give the "
                  "full path, e.g. /var/lib/voxray/recordings", v);
        goto fail;
    }
    if (!(s->dir = strdup(v))) goto oom;
    for (len = strlen(s->dir); len > 1 && s->dir[len - 1] == '/'; len--) s->dir[len - 1] = '\0';

    s->fsync = 1;
    host->config_bool(h, "fsync", &s->fsync); /* parsed by the host (ABI 1.6) */
    v = host->config_get(h, "file_mode");
    if (rf_parse_mode(v ? v : "0640", &s->file_mode) != 0) {
        rf_seterr(err, code, 0, "rec_file: file_mode '%.16s' is not an octal mode like 0640", v);
        goto fail;
    }
    v = host->config_get(h, "dir_mode");
    if (rf_parse_mode(v ? v : "0750", &s->dir_mode) != 0 || (s->dir_mode & 0700) != 0700) {
        rf_seterr(err, code, 0, "rec_file: dir_mode '%.16s' is not an octal mode like 0750 "
                  "that lets the owner in (0700)", v);
        goto fail;
    }

    /* Not fatal: the daemon may start before the volume is mounted. */
    if (stat(s->dir, &st) != 0 || access(s->dir, W_OK) != 0)
        host->log(h, VX_LOG_WARN,
                  "folder %s is not usable (%s); uploads fail and are retried until it is "
                  "(it is not created here: it may be a volume still to be mounted)",
                  s->dir, strerror(errno));
    else if (!S_ISDIR(st.st_mode))
        host->log(h, VX_LOG_WARN, "%s is not a folder; uploads fail until it is", s->dir);
    host->log(h, VX_LOG_INFO, "writing recordings to %s (fsync %s, files %04o, folders %04o)",
              s->dir, s->fsync ? "on" : "off", (unsigned)s->file_mode, (unsigned)s->dir_mode);
    *inst = s;
    return VX_OK;

oom:
    code = VX_ENOMEM;
    rf_seterr(err, code, 0, "rec_file: out of memory");
fail:
    rf_free(s);
    return code;
}

static void rf_shutdown(void *inst) {
    rf_free(inst);
}

/* "12.3 GiB" */
static void rf_human(uint64_t b, char *buf, size_t len) {
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    double v = (double)b;
    int i = 0;

    while (v >= 1024 && i < 5) v /= 1024, i++;
    if (i == 0) snprintf(buf, len, "%llu B", (unsigned long long)b);
    else snprintf(buf, len, "%.1f %s", v, unit[i]);
}

/* Cheap (a stat, an access and a statvfs; no write): polled every few
 * hundred ms. Unhealthy when the folder is missing, not a folder, not
 * writable or full; the outcome of the last upload is shown either way. */
static int rf_health(void *inst, char *buf, size_t len) {
    rf_sink *s = inst;
    struct stat st;
    struct statvfs sv;
    char space[32], last[300] = "";
    uint64_t now = s->api->now_ns();
    int rc = VX_OK;

    pthread_mutex_lock(&s->mu);
    if (s->have_last) {
        unsigned long long age = (now - s->last_ns) / 1000000000ull;
        if (s->last_rc == VX_OK)
            snprintf(last, sizeof(last), "; last upload ok %llu s ago", age);
        else
            snprintf(last, sizeof(last), "; last upload failed %llu s ago: %.200s", age,
                     s->last_msg);
    }
    pthread_mutex_unlock(&s->mu);

    if (stat(s->dir, &st) != 0) {
        snprintf(buf, len, "down: %s: %s%s", s->dir, strerror(errno), last);
        return VX_EUNAVAIL;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(buf, len, "down: %s is not a folder%s", s->dir, last);
        return VX_EUNAVAIL;
    }
    if (access(s->dir, W_OK) != 0 || statvfs(s->dir, &sv) != 0) {
        snprintf(buf, len, "down: %s not writable: %s%s", s->dir, strerror(errno), last);
        return VX_EUNAVAIL;
    }
    rf_human((uint64_t)sv.f_bavail * sv.f_frsize, space, sizeof(space));
    if (sv.f_bavail == 0) rc = VX_EUNAVAIL;
    snprintf(buf, len, "%s: %s free in %s%s", rc == VX_OK ? "ok" : "full", space, s->dir, last);
    return rc;
}

static const vx_plugin_info rf_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_SINK,
    .name = "rec_file",
    .version = RF_VERSION,
    .description = "recording sink writing to a local or mounted folder (<dir>/YYYY/MM/DD/)",
    .caps = 0,
    .config = rf_config,
    .init = rf_init,
    .shutdown = rf_shutdown,
    .sink = &rf_vtable,
    .health = rf_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* log, log_enabled, now_ns and config_get exist since 1.0; the typed
     * getter config_bool since 1.6. */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, config_bool) ||
        !host->config_bool) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, "rec_file needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &rf_info;
}
