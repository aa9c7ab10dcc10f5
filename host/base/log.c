/*
 * Logger: text (logfmt-like, the reference format) or JSON lines on stdout.
 * See log.h for the contract.
 */
#include "config.h"

#include "base/log.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#define LOG_MAX_SECRETS 64
#define LOG_MAX_FIELDS 32

static atomic_int g_level = VX_LOG_INFO;
static atomic_int g_json = 0;
static atomic_int g_fd = 1;

static pthread_mutex_t g_secret_lock = PTHREAD_MUTEX_INITIALIZER;
static char *g_secrets[LOG_MAX_SECRETS];
static size_t g_n_secrets;

static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR"};
static const char *const level_lower[] = {"debug", "info", "warn", "error"};

int log_level_parse(const char *s)
{
    if (s == NULL) return -1;
    for (int i = 0; i < 4; i++)
        if (strcasecmp(s, level_lower[i]) == 0) return i;
    if (strcasecmp(s, "warning") == 0) return VX_LOG_WARN;
    return -1;
}

const char *log_level_name(int level)
{
    if (level < 0 || level > 3) return "unknown";
    return level_lower[level];
}

void log_set_level(int level)
{
    if (level >= VX_LOG_DEBUG && level <= VX_LOG_ERROR) atomic_store(&g_level, level);
}

int log_get_level(void) { return atomic_load_explicit(&g_level, memory_order_relaxed); }
void log_set_json(int on) { atomic_store(&g_json, on ? 1 : 0); }

static atomic_int g_transcripts;
void log_set_transcripts(int on) { atomic_store(&g_transcripts, on ? 1 : 0); }
int log_transcripts(void) { return atomic_load_explicit(&g_transcripts, memory_order_relaxed); }
void log_set_fd(int fd) { atomic_store(&g_fd, fd); }

void log_add_secret(const char *value)
{
    if (value == NULL || strlen(value) < 4) return;
    pthread_mutex_lock(&g_secret_lock);
    for (size_t i = 0; i < g_n_secrets; i++) {
        if (strcmp(g_secrets[i], value) == 0) goto out;
    }
    if (g_n_secrets < LOG_MAX_SECRETS) {
        char *copy = strdup(value);
        if (copy) g_secrets[g_n_secrets++] = copy;
    }
out:
    pthread_mutex_unlock(&g_secret_lock);
}

void log_clear_secrets(void)
{
    pthread_mutex_lock(&g_secret_lock);
    for (size_t i = 0; i < g_n_secrets; i++) free(g_secrets[i]);
    g_n_secrets = 0;
    pthread_mutex_unlock(&g_secret_lock);
}

/* Field keys whose values are credentials whatever they hold: the word
 * itself or a key ending in "_word" (client_secret, access_token), but not
 * prompt_tokens or secret_name. */
static int key_is_secret(const char *key)
{
    static const char *const words[] = {"password", "passwd", "secret", "token",
                                        "api_key", "apikey", "authorization", NULL};
    size_t kl = strlen(key);
    for (int i = 0; words[i]; i++) {
        size_t wl = strlen(words[i]);
        if (kl == wl && strcasecmp(key, words[i]) == 0) return 1;
        if (kl > wl && key[kl - wl - 1] == '_' && strcasecmp(key + kl - wl, words[i]) == 0) return 1;
    }
    return 0;
}

/* Return a malloc'd copy of s with every registered secret replaced by ***,
 * or NULL if s contains none (the common case: no allocation). */
static char *mask_secrets(const char *s)
{
    char *out = NULL;
    pthread_mutex_lock(&g_secret_lock);
    for (size_t i = 0; i < g_n_secrets; i++) {
        const char *cur = out ? out : s;
        if (strstr(cur, g_secrets[i]) == NULL) continue;
        size_t sl = strlen(g_secrets[i]);
        size_t n = strlen(cur);
        char *buf = malloc(n + 1); /* "***" is never longer than a secret (>= 4) */
        if (buf == NULL) break;
        const char *p = cur;
        char *w = buf;
        const char *hit;
        while ((hit = strstr(p, g_secrets[i])) != NULL) {
            memcpy(w, p, (size_t)(hit - p));
            w += hit - p;
            memcpy(w, "***", 3);
            w += 3;
            p = hit + sl;
        }
        strcpy(w, p);
        free(out);
        out = buf;
    }
    pthread_mutex_unlock(&g_secret_lock);
    return out;
}

/* A small growable string. On allocation failure it stops growing and the
 * line is truncated, never corrupted. */
typedef struct sbuf {
    char *p;
    size_t len, cap;
    int oom;
} sbuf;

static void sb_grow(sbuf *b, size_t need)
{
    if (b->oom || b->len + need + 1 <= b->cap) return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + need + 1) cap *= 2;
    char *np = realloc(b->p, cap);
    if (np == NULL) {
        b->oom = 1;
        return;
    }
    b->p = np;
    b->cap = cap;
}

static void sb_putn(sbuf *b, const char *s, size_t n)
{
    sb_grow(b, n);
    if (b->oom) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void sb_puts(sbuf *b, const char *s) { sb_putn(b, s, strlen(s)); }

static void sb_putc(sbuf *b, char c) { sb_putn(b, &c, 1); }

static int needs_quotes(const char *v)
{
    if (*v == '\0') return 1;
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (*p <= ' ' || *p == '=' || *p == '"' || *p == '\\' || *p == 0x7f) return 1;
    }
    return 0;
}

/* Quoted, escaped value: \" \\ \n \r \t and \xHH for other control bytes. */
static void sb_quoted(sbuf *b, const char *v)
{
    sb_putc(b, '"');
    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        char tmp[8];
        switch (*p) {
        case '"': sb_puts(b, "\\\""); break;
        case '\\': sb_puts(b, "\\\\"); break;
        case '\n': sb_puts(b, "\\n"); break;
        case '\r': sb_puts(b, "\\r"); break;
        case '\t': sb_puts(b, "\\t"); break;
        default:
            if (*p < 0x20 || *p == 0x7f) {
                snprintf(tmp, sizeof tmp, "\\x%02x", *p);
                sb_puts(b, tmp);
            } else {
                sb_putc(b, (char)*p);
            }
        }
    }
    sb_putc(b, '"');
}

/* The message part of a text line: control characters escaped so that a
 * message can never span two lines. */
static void sb_message(sbuf *b, const char *m)
{
    for (const unsigned char *p = (const unsigned char *)m; *p; p++) {
        char tmp[8];
        if (*p == '\n') sb_puts(b, "\\n");
        else if (*p == '\r') sb_puts(b, "\\r");
        else if (*p < 0x20 || *p == 0x7f) {
            snprintf(tmp, sizeof tmp, "\\x%02x", *p);
            sb_puts(b, tmp);
        } else sb_putc(b, (char)*p);
    }
}

static int valid_key(const char *k)
{
    if (k == NULL || *k == '\0') return 0;
    for (const char *p = k; *p; p++) {
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
              (*p >= '0' && *p <= '9') || *p == '_' || *p == '.' || *p == '-'))
            return 0;
    }
    return 1;
}

static char *format_text(int level, long long now_ms, const char *msg,
                         const char *const *kv, size_t n_kv)
{
    sbuf b = {0};
    char ts[32];
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    localtime_r(&t, &tm);
    strftime(ts, sizeof ts, "%Y/%m/%d %H:%M:%S", &tm);
    sb_puts(&b, ts);
    sb_putc(&b, ' ');
    sb_puts(&b, level_names[level]);
    sb_putc(&b, ' ');
    sb_message(&b, msg);
    for (size_t i = 0; i + 1 < n_kv * 2; i += 2) {
        const char *k = kv[i], *v = kv[i + 1] ? kv[i + 1] : "";
        sb_putc(&b, ' ');
        sb_puts(&b, valid_key(k) ? k : "invalid_key");
        sb_putc(&b, '=');
        if (key_is_secret(k)) v = "***";
        if (needs_quotes(v)) sb_quoted(&b, v);
        else sb_puts(&b, v);
    }
    sb_putc(&b, '\n');
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

static char *format_json(int level, long long now_ms, const char *msg,
                         const char *const *kv, size_t n_kv)
{
    char ts[40];
    time_t t = (time_t)(now_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%03dZ", (int)(now_ms % 1000));

    json_t *o = json_object();
    if (o == NULL) return NULL;
    /* Insertion order is kept by jansson with JSON_PRESERVE_ORDER. Invalid
     * UTF-8 is rejected by json_string(); fall back to a lossy copy. */
    json_object_set_new(o, "time", json_string(ts));
    json_object_set_new(o, "level", json_string(level_lower[level]));
    json_t *m = json_string(msg);
    json_object_set_new(o, "msg", m ? m : json_string("(invalid utf-8)"));
    for (size_t i = 0; i + 1 < n_kv * 2; i += 2) {
        const char *k = kv[i], *v = kv[i + 1] ? kv[i + 1] : "";
        if (!valid_key(k)) k = "invalid_key";
        if (strcmp(k, "time") == 0 || strcmp(k, "level") == 0 || strcmp(k, "msg") == 0)
            continue; /* never let a field shadow the envelope */
        if (key_is_secret(k)) v = "***";
        json_t *jv = json_string(v);
        json_object_set_new(o, k, jv ? jv : json_string("(invalid utf-8)"));
    }
    char *s = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
    json_decref(o);
    if (s == NULL) return NULL;
    size_t len = strlen(s);
    char *line = malloc(len + 2);
    if (line) {
        memcpy(line, s, len);
        line[len] = '\n';
        line[len + 1] = '\0';
    }
    free(s);
    return line;
}

char *log_format_line(int level, long long now_ms, const char *msg,
                      const char *const *kv, size_t n_kv)
{
    /* Mask the inputs, not the rendered line: once quoted or JSON-escaped, a
     * secret holding '"', '\\' or a control byte no longer appears verbatim. */
    const char *mkv[LOG_MAX_FIELDS * 2];
    char *owned[LOG_MAX_FIELDS + 1];
    size_t n_owned = 0;
    char *m;
    if (level < VX_LOG_DEBUG || level > VX_LOG_ERROR) level = VX_LOG_ERROR;
    if (msg == NULL) msg = "";
    if (n_kv > LOG_MAX_FIELDS) n_kv = LOG_MAX_FIELDS;
    if ((m = mask_secrets(msg)) != NULL) msg = owned[n_owned++] = m;
    for (size_t i = 0; i < n_kv; i++) {
        mkv[2 * i] = kv[2 * i];
        mkv[2 * i + 1] = kv[2 * i + 1];
        if (kv[2 * i + 1] && (m = mask_secrets(kv[2 * i + 1])) != NULL)
            mkv[2 * i + 1] = owned[n_owned++] = m;
    }
    char *line = atomic_load(&g_json) ? format_json(level, now_ms, msg, mkv, n_kv)
                                      : format_text(level, now_ms, msg, mkv, n_kv);
    for (size_t i = 0; i < n_owned; i++) free(owned[i]);
    return line;
}

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void emit(const char *line)
{
    int fd = atomic_load(&g_fd);
    size_t len = strlen(line), off = 0;
    while (off < len) {
        ssize_t w = write(fd, line + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return; /* nowhere to report a failing stdout */
        off += (size_t)w;
    }
}

void log_vkv(int level, const char *msg, va_list ap)
{
    if (!log_enabled(level)) return;
    const char *kv[LOG_MAX_FIELDS * 2];
    size_t n = 0;
    for (;;) {
        const char *k = va_arg(ap, const char *);
        if (k == NULL) break;
        const char *v = va_arg(ap, const char *);
        if (n < LOG_MAX_FIELDS) {
            kv[2 * n] = k;
            kv[2 * n + 1] = v;
            n++;
        }
    }
    char *line = log_format_line(level, now_ms(), msg, kv, n);
    if (line) {
        emit(line);
        free(line);
    }
}

void log_kv(int level, const char *msg, ...)
{
    va_list ap;
    va_start(ap, msg);
    log_vkv(level, msg, ap);
    va_end(ap);
}

void log_vfmt(int level, const char *fmt, va_list ap)
{
    if (!log_enabled(level)) return;
    char buf[2048];
    vsnprintf(buf, sizeof buf, fmt, ap);
    char *line = log_format_line(level, now_ms(), buf, NULL, 0);
    if (line) {
        emit(line);
        free(line);
    }
}

void log_fmt(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    log_vfmt(level, fmt, ap);
    va_end(ap);
}
