/*
 * rec_s3: the recording sink that uploads finished files to Amazon S3 or an
 * S3-compatible store (MinIO, Ceph RGW, R2, ...), with SigV4-signed requests.
 *
 * Objects. A file goes to s3://bucket/prefix/name, where name is the host's
 * vx_recording.name (ABI 1.2) or, from an older host, the same name derived
 * here: YYYY/MM/DD/<session id>.wav (or .json) from the UTC date the call
 * started. Files up to multipart_threshold bytes are one PUT; larger ones
 * are a multipart upload of part_size parts. Either way the object appears
 * only when complete: S3 applies a PUT atomically, and a multipart upload
 * becomes an object only at CompleteMultipartUpload. Any failure after
 * CreateMultipartUpload aborts the upload (best effort: a bucket lifecycle
 * rule for incomplete uploads is the backstop when the abort itself fails).
 * Uploading the same name again replaces the object with the same bytes,
 * so a repeated call is harmless. part_size cannot go below S3's 5 MiB
 * minimum: some local servers accept smaller parts, but S3 refuses them
 * only at CompleteMultipartUpload (EntityTooSmall), after the whole file
 * went up; it is raised when a file would need more than 10,000 parts.
 *
 * Signing. libcurl's CURLOPT_AWS_SIGV4 signs each request. libcurl 7.88
 * does not hash a body it reads through a callback, so x-amz-content-sha256
 * carries the real SHA-256 of the body (of each part), computed here with
 * libcrypto right before the request; curl signs that header's value. curl
 * 7.88 also signs the query string as written, so every query is written
 * here in canonical form: keys sorted, "key=" for an empty value, values
 * RFC 3986 encoded.
 *
 * Failure. upload() returns a VX_E* code with vx_error filled; the host
 * owns retries, so no request is repeated here. Mapping:
 *   HTTP 401/403 (SignatureDoesNotMatch, InvalidAccessKeyId, AccessDenied,
 *     RequestTimeTooSkewed) and 400 ExpiredToken/InvalidToken
 *                                -> VX_EAUTH, not retryable
 *   404 NoSuchBucket, other 4xx and 3xx (301 PermanentRedirect: the bucket
 *     lives in another region) -> VX_EINVAL, not retryable (the
 *     configuration or the request is wrong; VX_ENOTFOUND is the store's
 *     "no such key", not a failure, so it is not used)
 *   404 NoSuchUpload (a multipart upload vanished) -> VX_EUNAVAIL, retryable
 *   408 and 400 RequestTimeout -> VX_ETIMEDOUT, retryable
 *   429, 503 SlowDown         -> VX_ERATELIMIT, retryable
 *   other 5xx           -> VX_EUNAVAIL, retryable
 *   an error document inside a 200 answer to CompleteMultipartUpload ->
 *     mapped by its code (InternalError: VX_EUNAVAIL, retryable)
 *   refused, DNS, reset, TLS handshake -> VX_EUNAVAIL, retryable (a
 *     certificate that fails verification: not retryable)
 *   curl timeout, or less than 1 KiB/s for stall_timeout -> VX_ETIMEDOUT,
 *     retryable
 *   the local file missing, unreadable or shrinking -> VX_EINVAL, not
 *     retryable
 * The message names the S3 error code from the XML answer when there is one
 * ("403 SignatureDoesNotMatch: ..."). A file larger than 10,000 parts of
 * 5 GiB is refused with VX_EINVAL before any request. Failures are not
 * logged one by one (the host has them); the first failure after a success
 * is logged as a warning and the recovery as info, and health() reports
 * "failing: 403 SignatureDoesNotMatch (3 in a row, last 2s ago)".
 *
 * Threads. upload() runs concurrently on host workers. Each call has its own
 * curl easy handle (the parts of one upload share its connection; calls do
 * not share any); the only shared mutable state is the health record, under
 * a mutex. health() reads that record and never touches the network.
 *
 * Secrets. secret_access_key and session_token are never logged and never
 * put in an error message; messages built from server answers are scrubbed
 * of them all the same.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <voxray/plugin.h>

#define S3_VERSION "1.0.0"
#define S3_MIN_PART (5ull << 20)   /* S3: every part but the last */
#define S3_MAX_PART (5ull << 30)   /* S3: largest part, and largest PUT */
#define S3_MAX_PARTS 10000         /* S3: parts of one upload */
#define S3_RESP_MAX (64u << 10)    /* answer bytes kept: XML results and errors */
#define S3_META_MAX 2000           /* S3 allows 2 KiB of user metadata */
#define S3_REASON 96               /* health's short reason */

typedef struct s3_sink {
    const vx_host_api *api;
    vx_host *h;
    char *base;     /* URL up to and without the key: ".../bucket" or "...//bucket.host" */
    char *bucket;
    char *prefix;   /* "" or "dir/sub/" (always ends in '/') */
    char *akid;
    char *secret;
    char *token;    /* NULL: none */
    char sigv4[96]; /* "aws:amz:REGION:s3" */
    unsigned long long threshold, part_size;
    long connect_ms, timeout_ms, stall_s;
    int metadata;
    vx_metric *m_bytes;

    pthread_mutex_t mu; /* guards the fields below */
    unsigned long long n_ok, n_failed;
    unsigned fails_in_row;
    uint64_t last_ok_ns, last_fail_ns;
    int last_code;
    char last_reason[S3_REASON];
} s3_sink;

static const vx_config_key s3_config[] = {
    {"endpoint", VX_CFG_STRING, "https://s3.amazonaws.com",
     "S3 service URL (scheme://host[:port]); e.g. https://s3.eu-west-1.amazonaws.com "
     "or http://127.0.0.1:9000 for MinIO", 0, 1024, NULL, 0},
    {"region", VX_CFG_STRING, "us-east-1", "region the requests are signed for",
     0, 64, NULL, 0},
    {"bucket", VX_CFG_STRING, NULL, "bucket the recordings go to", 0, 255, NULL,
     VX_CFG_REQUIRED},
    {"prefix", VX_CFG_STRING, "",
     "key prefix; object key = prefix/name with exactly one '/' between "
     "(characters A-Z a-z 0-9 . _ - ~ /)", 0, 512, NULL, 0},
    {"path_style", VX_CFG_BOOL, "false",
     "true: endpoint/bucket/key (MinIO, local servers); false: bucket.endpoint/key",
     0, 0, NULL, 0},
    {"access_key_id", VX_CFG_STRING, "",
     "access key id; empty: $AWS_ACCESS_KEY_ID", 0, 256, NULL, 0},
    {"secret_access_key", VX_CFG_STRING, "",
     "secret access key; empty: $AWS_SECRET_ACCESS_KEY", 0, 256, NULL, VX_CFG_SECRET},
    {"session_token", VX_CFG_STRING, "",
     "temporary session token, sent as x-amz-security-token; empty: "
     "$AWS_SESSION_TOKEN when the access key id also came from the environment",
     0, 4096, NULL, VX_CFG_SECRET},
    {"multipart_threshold", VX_CFG_INT, "16777216",
     "files larger than this many bytes go up as a multipart upload",
     5242880, 5368709120.0, NULL, 0},
    {"part_size", VX_CFG_INT, "8388608",
     "bytes per multipart part (S3's minimum is 5 MiB); raised when a file would "
     "need more than 10000 parts", 5242880, 5368709120.0, NULL, 0},
    {"connect_timeout", VX_CFG_DURATION, "5s", "deadline for connecting to the endpoint",
     1, 300000, NULL, 0},
    {"timeout", VX_CFG_DURATION, "60s",
     "deadline for one request (one PUT, or one part of a multipart upload)",
     1, 86400000, NULL, 0},
    {"stall_timeout", VX_CFG_DURATION, "20s",
     "a request moving less than 1 KiB/s for this long fails as timed out (0: off)",
     0, 3600000, NULL, 0},
    {"metadata", VX_CFG_BOOL, "true",
     "send the session id and the recording's metadata as x-amz-meta-* headers",
     0, 0, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

/* ---------------------------------------------------------------- helpers */

static void s3_seterr(vx_error *err, int code, int retryable, int status, const char *fmt, ...)
    VX_PRINTF(5, 6);

static void s3_seterr(vx_error *err, int code, int retryable, int status, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = retryable;
    err->upstream_status = status;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

/* Replace every occurrence of secret in msg by "***". Secrets shorter than 4
 * bytes would mangle ordinary words and are left alone. */
static void s3_scrub(char *msg, const char *secret) {
    size_t sl = secret ? strlen(secret) : 0;
    char *p;

    if (sl < 4) return;
    while ((p = strstr(msg, secret)) != NULL) {
        memcpy(p, "***", 3);
        memmove(p + 3, p + sl, strlen(p + sl) + 1);
    }
}

/* Settings as the host parsed them (ABI 1.6 typed getters), def when the
 * key has no value. */
static long s3_ms(s3_sink *s, const char *key, long def) {
    int64_t v = def;
    if (s->api->config_duration_ms(s->h, key, &v) != VX_OK || v < 0 || v > LONG_MAX) return def;
    return (long)v;
}

static uint64_t s3_size(s3_sink *s, const char *key, uint64_t def) {
    uint64_t v = def;
    return s->api->config_size(s->h, key, &v) == VX_OK ? v : def;
}

static int s3_bool(s3_sink *s, const char *key, int def) {
    int v = def;
    return s->api->config_bool(s->h, key, &v) == VX_OK ? v : def;
}

static const char *s3_cfg(s3_sink *s, const char *key) {
    const char *v = s->api->config_get(s->h, key);
    return v ? v : "";
}

/* Characters that need no percent-encoding in a path (RFC 3986 unreserved)
 * plus '/': keys made of them are signed by curl exactly as S3 expects. */
static int s3_key_char(int c) {
    return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '~' || c == '/';
}

/* A key part: only s3_key_char characters, no empty, "." or ".." segment
 * (curl would rewrite those), no leading or trailing '/'. */
static int s3_key_ok(const char *k) {
    const char *seg = k;

    if (!*k) return 0;
    for (const char *p = k;; p++) {
        if (*p && !s3_key_char((unsigned char)*p)) return 0;
        if (*p == '/' || *p == '\0') {
            size_t n = (size_t)(p - seg);
            if (n == 0 || (n == 1 && seg[0] == '.') || (n == 2 && seg[0] == '.' && seg[1] == '.'))
                return 0;
            if (!*p) return 1;
            seg = p + 1;
        }
    }
}

/* RFC 3986 percent-encoding of v into out; returns out, or NULL when it
 * does not fit. */
static char *s3_urlencode(const char *v, char *out, size_t len) {
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;

    for (const unsigned char *p = (const unsigned char *)v; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '_' || *p == '.' || *p == '~') {
            if (o + 1 >= len) return NULL;
            out[o++] = (char)*p;
        } else {
            if (o + 3 >= len) return NULL;
            out[o++] = '%';
            out[o++] = hex[*p >> 4];
            out[o++] = hex[*p & 15];
        }
    }
    if (o >= len) return NULL;
    out[o] = '\0';
    return out;
}

static void s3_hex(const unsigned char *d, size_t n, char *out) {
    static const char hex[] = "0123456789abcdef";

    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

/* Hex SHA-256 of len bytes of fd from off into hex (65 bytes). Returns 0,
 * VX_EINVAL when the file cannot be read or ends early (it shrank), or
 * VX_ENOMEM. */
static int s3_sha256_fd(int fd, uint64_t off, uint64_t len, char *hex) {
    unsigned char buf[65536], md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    int rc = VX_ENOMEM;

    if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL)) goto done;
    rc = VX_EINVAL;
    while (len > 0) {
        size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        ssize_t n = pread(fd, buf, want, (off_t)off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) goto done;
        EVP_DigestUpdate(ctx, buf, (size_t)n);
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    if (!EVP_DigestFinal_ex(ctx, md, &mdlen)) goto done;
    s3_hex(md, mdlen, hex);
    rc = 0;
done:
    EVP_MD_CTX_free(ctx);
    return rc;
}

static void s3_sha256_mem(const void *p, size_t n, char *hex) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;

    EVP_Digest(p, n, md, &mdlen, EVP_sha256(), NULL);
    s3_hex(md, mdlen, hex);
}

/* The text of the first <tag>...</tag> element of an XML answer, into out
 * (cut to fit). Returns 1 when found. S3's answers are flat documents whose
 * few fields read here (Code, Message, UploadId) are plain text; the five
 * predefined entities are decoded, nothing else of XML is needed. */
static int s3_xml_text(const char *xml, const char *tag, char *out, size_t len) {
    char open[48], close[48];
    const char *a, *b;
    size_t o = 0;

    if (!xml || len == 0) return 0;
    snprintf(open, sizeof(open), "<%s>", tag);
    snprintf(close, sizeof(close), "</%s>", tag);
    if (!(a = strstr(xml, open))) return 0;
    a += strlen(open);
    if (!(b = strstr(a, close))) return 0;
    while (a < b && o + 1 < len) {
        static const struct { const char *ent; char c; } ents[] = {
            {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
        size_t i, n = sizeof(ents) / sizeof(ents[0]);
        for (i = 0; *a == '&' && i < n; i++) {
            size_t el = strlen(ents[i].ent);
            if ((size_t)(b - a) >= el && memcmp(a, ents[i].ent, el) == 0) {
                out[o++] = ents[i].c;
                a += el;
                break;
            }
        }
        if (*a != '&' || i == n) {
            unsigned char c = (unsigned char)*a++;
            out[o++] = c < 0x20 ? ' ' : (char)c; /* one line, for messages */
        }
    }
    out[o] = '\0';
    return 1;
}

/* ---------------------------------------------------------------- requests */

/* One HTTP request and what came back. The body comes from a range of a
 * file (fd >= 0) or from memory. */
typedef struct s3_req {
    const char *method; /* "PUT", "POST" or "DELETE" */
    const char *what;   /* for messages: "PUT", "UploadPart 3/7", ... */
    char *url;
    const char *ctype;  /* Content-Type, or NULL */
    struct curl_slist *meta; /* x-amz-meta-* lines, not owned */
    int fd;
    uint64_t off, len, pos;
    int read_failed;
    const char *body;
    size_t body_len;
    /* The answer. */
    long status;
    char etag[128];
    char *resp;
    size_t resp_len;
    char errbuf[CURL_ERROR_SIZE];
} s3_req;

static size_t s3_on_read(char *buf, size_t size, size_t nitems, void *ud) {
    s3_req *r = ud;
    size_t want = size * nitems;
    ssize_t n;

    if (r->pos >= r->len) return 0;
    if (want > r->len - r->pos) want = (size_t)(r->len - r->pos);
    do n = pread(r->fd, buf, want, (off_t)(r->off + r->pos));
    while (n < 0 && errno == EINTR);
    if (n <= 0) { /* unreadable, or shorter than when it was hashed */
        r->read_failed = 1;
        return CURL_READFUNC_ABORT;
    }
    r->pos += (uint64_t)n;
    return (size_t)n;
}

static size_t s3_on_write(char *p, size_t size, size_t nmemb, void *ud) {
    s3_req *r = ud;
    size_t n = size * nmemb, take = S3_RESP_MAX - r->resp_len;
    char *b;

    if (take > n) take = n;
    if (take && (b = realloc(r->resp, r->resp_len + take + 1)) != NULL) {
        memcpy(b + r->resp_len, p, take);
        r->resp = b;
        r->resp_len += take;
        b[r->resp_len] = '\0';
    }
    return n; /* the rest is dropped, never an error */
}

static size_t s3_on_header(char *p, size_t size, size_t nitems, void *ud) {
    s3_req *r = ud;
    size_t n = size * nitems, v = 5;

    if (n > 5 && strncasecmp(p, "ETag:", 5) == 0) {
        while (v < n && (p[v] == ' ' || p[v] == '\t')) v++;
        size_t e = n;
        while (e > v && (p[e - 1] == '\r' || p[e - 1] == '\n' || p[e - 1] == ' ')) e--;
        if (e - v < sizeof(r->etag)) {
            memcpy(r->etag, p + v, e - v);
            r->etag[e - v] = '\0';
        }
    }
    return n;
}

static void s3_req_clear(s3_req *r) {
    free(r->url);
    free(r->resp);
    r->url = NULL;
    r->resp = NULL;
}

/* The code for an HTTP error answer; sets *retry. */
static int s3_http_code(long status, const char *code, int *retry) {
    *retry = 0;
    if (status == 401 || status == 403) return VX_EAUTH;
    if (strcmp(code, "ExpiredToken") == 0 || strcmp(code, "InvalidToken") == 0 ||
        strcmp(code, "TokenRefreshRequired") == 0)
        return VX_EAUTH;
    if (status == 408 || strcmp(code, "RequestTimeout") == 0) {
        *retry = 1;
        return VX_ETIMEDOUT;
    }
    if (status == 429 || strcmp(code, "SlowDown") == 0) {
        *retry = 1;
        return VX_ERATELIMIT;
    }
    if (status >= 500 || strcmp(code, "NoSuchUpload") == 0 ||
        strcmp(code, "InternalError") == 0) {
        *retry = 1;
        return VX_EUNAVAIL;
    }
    if (status >= 300) return VX_EINVAL; /* 3xx: PermanentRedirect, wrong region or endpoint */
    return VX_EPROTO; /* an error document in a 2xx answer, code unknown */
}

/* An S3 error answer (or an error document inside a 200), into err. */
static void s3_answer_error(s3_sink *s, const s3_req *r, const char *key, vx_error *err,
                            char *reason, size_t rlen) {
    char code[64] = "", msg[160] = "";
    int retry;

    if (!s3_xml_text(r->resp, "Code", code, sizeof(code))) code[0] = '\0';
    for (char *c = code; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '.' && *c != '_') *c = '?';
    s3_xml_text(r->resp, "Message", msg, sizeof(msg));
    int vx = s3_http_code(r->status, code, &retry);
    snprintf(reason, rlen, "%ld%s%s", r->status, code[0] ? " " : "", code);
    s3_seterr(err, vx, retry, (int)r->status, "%s%s%s (%s s3://%s/%s)", reason,
              msg[0] ? ": " : "", msg, r->what, s->bucket, key);
}

/* A transfer that ended without an HTTP answer, into err. */
static void s3_transfer_error(s3_sink *s, const s3_req *r, CURLcode res, const char *key,
                              vx_error *err, char *reason, size_t rlen) {
    const char *why = r->errbuf[0] ? r->errbuf : curl_easy_strerror(res);
    int code = VX_EUNAVAIL, retry = 1;

    if (r->read_failed || res == CURLE_READ_ERROR) {
        snprintf(reason, rlen, "cannot read the file");
        s3_seterr(err, VX_EINVAL, 0, 0, "cannot read the file (unreadable, or it shrank) "
                  "(%s s3://%s/%s)", r->what, s->bucket, key);
        return;
    }
    switch (res) {
    case CURLE_OPERATION_TIMEDOUT: code = VX_ETIMEDOUT; break;
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_NOT_BUILT_IN: code = VX_EINVAL, retry = 0; break;
    case CURLE_OUT_OF_MEMORY: code = VX_ENOMEM; break;
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM: retry = 0; break; /* fails the same way again */
    default: break; /* refused, DNS, reset, TLS handshake: the endpoint's trouble */
    }
    snprintf(reason, rlen, "%.*s", (int)rlen - 1, why);
    s3_seterr(err, code, retry, 0, "%s (%s s3://%s/%s)", why, r->what, s->bucket, key);
}

/* Run one request on curl (reset first; its connections are kept). Returns
 * VX_OK on a 2xx answer, else a VX_E* code with err and reason (a short
 * form for health) filled. */
static int s3_perform(s3_sink *s, CURL *curl, s3_req *r, const char *key, vx_error *err,
                      char *reason, size_t rlen) {
    struct curl_slist *hdr = NULL, *t;
    char line[4200], hash[65];
    CURLcode res;
    int rc = VX_ENOMEM;

    r->status = 0;
    r->etag[0] = '\0';
    r->errbuf[0] = '\0';
    r->pos = 0;
    r->read_failed = 0;
    free(r->resp);
    r->resp = NULL;
    r->resp_len = 0;

    if (r->fd >= 0) {
        if ((rc = s3_sha256_fd(r->fd, r->off, r->len, hash)) != 0) {
            snprintf(reason, rlen, "cannot read the file");
            s3_seterr(err, rc, 0, 0, "%s (%s s3://%s/%s)",
                      rc == VX_ENOMEM ? "out of memory hashing the file"
                                      : "cannot read the file (unreadable or shrank)",
                      r->what, s->bucket, key);
            return rc;
        }
    } else {
        s3_sha256_mem(r->body ? r->body : "", r->body_len, hash);
    }

    snprintf(line, sizeof(line), "x-amz-content-sha256: %s", hash);
    if (!(t = curl_slist_append(hdr, line))) goto oom;
    hdr = t;
    if (s->token) {
        snprintf(line, sizeof(line), "x-amz-security-token: %s", s->token);
        t = curl_slist_append(hdr, line);
        memset(line, 0, sizeof(line));
        if (!t) goto oom;
        hdr = t;
    }
    /* No "Content-Type:" line to suppress one: curl 7.88 would sign the
     * empty header it does not send. PUT and DELETE get none anyway. */
    if (r->ctype) {
        snprintf(line, sizeof(line), "Content-Type: %s", r->ctype);
        if (!(t = curl_slist_append(hdr, line))) goto oom;
        hdr = t;
    }
    for (const struct curl_slist *m = r->meta; m; m = m->next) {
        if (!(t = curl_slist_append(hdr, m->data))) goto oom;
        hdr = t;
    }

    curl_easy_reset(curl);
    curl_easy_setopt(curl, CURLOPT_URL, r->url);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_AWS_SIGV4, s->sigv4);
    curl_easy_setopt(curl, CURLOPT_USERNAME, s->akid);
    curl_easy_setopt(curl, CURLOPT_PASSWORD, s->secret);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "voxray-rec_s3/" S3_VERSION);
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT_MS, s->connect_ms);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, s->timeout_ms);
    if (s->stall_s > 0) {
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, s->stall_s);
    }
    curl_easy_setopt(curl, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, s3_on_write);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, s3_on_header);
    curl_easy_setopt(curl, CURLOPT_HEADERDATA, r);
    if (strcmp(r->method, "PUT") == 0) {
        curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(curl, CURLOPT_READFUNCTION, s3_on_read);
        curl_easy_setopt(curl, CURLOPT_READDATA, r);
        curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->len);
    } else if (strcmp(r->method, "POST") == 0) {
        curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)r->body_len);
        curl_easy_setopt(curl, CURLOPT_POSTFIELDS, r->body ? r->body : "");
    } else {
        curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, r->method);
    }

    res = curl_easy_perform(curl);
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r->status);
    /* Drop every option, the password and the pointers into r (which may
     * not outlive this call) with them; the connection stays for the next
     * request of this upload. */
    curl_easy_reset(curl);

    if (r->status >= 200 && r->status <= 299 && res == CURLE_OK) {
        rc = VX_OK;
    } else if (r->status >= 300) { /* even if the body was cut short: S3 answered */
        s3_answer_error(s, r, key, err, reason, rlen);
        rc = err->code;
    } else if (res != CURLE_OK) {
        s3_transfer_error(s, r, res, key, err, reason, rlen);
        rc = err->code;
    } else {
        rc = VX_EPROTO;
        snprintf(reason, rlen, "no HTTP answer");
        s3_seterr(err, rc, 1, (int)r->status, "no final HTTP answer (%s s3://%s/%s)", r->what,
                  s->bucket, key);
    }
    if (rc != VX_OK) {
        s3_scrub(err->msg, s->secret);
        s3_scrub(err->msg, s->token);
        s3_scrub(reason, s->secret);
        s3_scrub(reason, s->token);
    }
    curl_slist_free_all(hdr);
    return rc;
oom:
    curl_slist_free_all(hdr);
    snprintf(reason, rlen, "out of memory");
    s3_seterr(err, VX_ENOMEM, 1, 0, "out of memory building a request (%s s3://%s/%s)",
              r->what, s->bucket, key);
    return VX_ENOMEM;
}

/* r->url = base/key?query (query may be NULL). */
static int s3_req_url(s3_sink *s, s3_req *r, const char *key, const char *query) {
    size_t n = strlen(s->base) + strlen(key) + (query ? strlen(query) : 0) + 3;

    free(r->url);
    if (!(r->url = malloc(n))) return VX_ENOMEM;
    snprintf(r->url, n, "%s/%s%s%s", s->base, key, query ? "?" : "", query ? query : "");
    return VX_OK;
}

/* ---------------------------------------------------------------- objects */

/* The object key for rec into key: prefix + the host's name, or the name
 * derived as an ABI 1.2 host would (UTC date of the start, session id with
 * characters outside [A-Za-z0-9._-] turned into '_'). VX_EINVAL when the
 * name is not a safe key. */
static int s3_object_key(s3_sink *s, const vx_recording *rec, char *key, size_t len,
                         vx_error *err) {
    char derived[300];
    const char *name = NULL;

    if (rec->struct_size >= VX_RECORDING_SIZE_1_2 && rec->name && *rec->name) {
        name = rec->name;
        while (*name == '/') name++;
    } else {
        time_t t = (time_t)(rec->started_unix_ms / 1000);
        struct tm tm;
        const char *sid = rec->session_id && *rec->session_id ? rec->session_id : "unknown";
        const char *ext = rec->content_type && strcmp(rec->content_type, "application/json") == 0
                              ? ".json" : ".wav";
        size_t o;

        if (rec->started_unix_ms < 0 || !gmtime_r(&t, &tm)) {
            s3_seterr(err, VX_EINVAL, 0, 0, "recording start time %lld is not a date",
                      (long long)rec->started_unix_ms);
            return VX_EINVAL;
        }
        o = strftime(derived, sizeof(derived), "%Y/%m/%d/", &tm);
        for (const char *p = sid; *p && o + 6 < sizeof(derived); p++) {
            unsigned char c = (unsigned char)*p;
            derived[o++] = isalnum(c) || c == '.' || c == '_' || c == '-' ? (char)c : '_';
        }
        derived[o] = '\0';
        strcat(derived, ext); /* so the last segment is never "." or ".." */
        name = derived;
    }
    if (!s3_key_ok(name)) {
        s3_seterr(err, VX_EINVAL, 0, 0, "object name '%.120s' is not a safe S3 key "
                  "(characters A-Z a-z 0-9 . _ - ~ /, no empty, . or .. segment)", name);
        return VX_EINVAL;
    }
    if ((size_t)snprintf(key, len, "%s%s", s->prefix, name) >= len) {
        s3_seterr(err, VX_EINVAL, 0, 0, "object key for '%.120s' is too long", name);
        return VX_EINVAL;
    }
    return VX_OK;
}

/* One x-amz-meta-NAME: VALUE line, when both are safe: the name is turned
 * into lower case with '_' as '-'; a value with characters outside
 * [A-Za-z0-9._:@+=,/-] is left out (spaces, quotes and non-ASCII would
 * need encoding that S3 clients disagree on). used tracks S3's 2 KiB. */
static struct curl_slist *s3_meta_add(struct curl_slist *l, const char *k, const char *v,
                                      size_t *used, int *oom) {
    char line[600];
    size_t o, kl = strlen(k), vl = strlen(v);
    struct curl_slist *t;

    if (!kl || kl > 64 || !vl || vl > 256 || *used + kl + vl > S3_META_MAX) return l;
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._:@+=,/-", *p)) return l;
    o = (size_t)snprintf(line, sizeof(line), "x-amz-meta-");
    for (const char *p = k; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (!isalnum(c) && c != '-' && c != '_') return l;
        line[o++] = c == '_' ? '-' : (char)tolower(c);
    }
    snprintf(line + o, sizeof(line) - o, ": %s", v);
    if (!(t = curl_slist_append(l, line))) {
        *oom = 1;
        return l;
    }
    *used += kl + vl;
    return t;
}

/* The metadata headers of rec, or NULL when off or none (*oom says why). */
static struct curl_slist *s3_meta(s3_sink *s, const vx_recording *rec, int *oom) {
    struct curl_slist *l = NULL;
    size_t used = 0;
    char num[64];

    *oom = 0;
    if (!s->metadata) return NULL;
    if (rec->session_id) l = s3_meta_add(l, "session-id", rec->session_id, &used, oom);
    snprintf(num, sizeof(num), "%.3f", rec->duration_s);
    l = s3_meta_add(l, "duration-s", num, &used, oom);
    snprintf(num, sizeof(num), "%lld", (long long)rec->started_unix_ms);
    l = s3_meta_add(l, "started-unix-ms", num, &used, oom);
    for (size_t i = 0; rec->meta && i < rec->n_meta; i++)
        if (rec->meta[i].key && rec->meta[i].value)
            l = s3_meta_add(l, rec->meta[i].key, rec->meta[i].value, &used, oom);
    return l;
}

/* A Content-Type safe to put in a header, or the generic one. */
static const char *s3_ctype(const vx_recording *rec) {
    const char *c = rec->content_type;

    if (!c || !*c || strlen(c) > 200) return "application/octet-stream";
    for (const char *p = c; *p; p++)
        if ((unsigned char)*p < 0x20 || (unsigned char)*p > 0x7e) return "application/octet-stream";
    return c;
}

/* Abort a multipart upload after a failure; failures to abort are logged,
 * not returned (the upload's own error matters more). */
static void s3_abort(s3_sink *s, CURL *curl, const char *key, const char *query) {
    s3_req r = {.method = "DELETE", .what = "AbortMultipartUpload", .fd = -1};
    vx_error e = {0};
    char reason[S3_REASON];

    if (s3_req_url(s, &r, key, query) != VX_OK ||
        s3_perform(s, curl, &r, key, &e, reason, sizeof(reason)) != VX_OK)
        s->api->log(s->h, VX_LOG_WARN,
                    "could not abort the failed multipart upload of s3://%s/%s (%s); its "
                    "parts stay until the bucket's lifecycle rule removes them",
                    s->bucket, key, e.msg[0] ? e.msg : "out of memory");
    s3_req_clear(&r);
}

/* Multipart upload of size bytes of fd to key. */
static int s3_multipart(s3_sink *s, CURL *curl, const vx_recording *rec, int fd, uint64_t size,
                        const char *key, struct curl_slist *meta, vx_error *err, char *reason,
                        size_t rlen, unsigned *n_parts) {
    uint64_t part = s->part_size;
    unsigned n, i;
    char upload_id[1024], enc[3200], query[3300];
    char (*etags)[128] = NULL;
    char *xml = NULL;
    size_t xl = 0, xcap;
    s3_req r = {.fd = -1};
    int rc;

    if ((size + part - 1) / part > S3_MAX_PARTS) {
        part = (size + S3_MAX_PARTS - 1) / S3_MAX_PARTS;
        part = (part + (1u << 20) - 1) & ~(uint64_t)((1u << 20) - 1); /* whole MiB */
        if (part > S3_MAX_PART) {
            snprintf(reason, rlen, "file too large");
            s3_seterr(err, VX_EINVAL, 0, 0, "%llu bytes is more than S3 takes in one object",
                      (unsigned long long)size);
            return VX_EINVAL;
        }
    }
    n = (unsigned)((size + part - 1) / part);
    *n_parts = n;

    r.method = "POST";
    r.what = "CreateMultipartUpload";
    r.ctype = s3_ctype(rec);
    r.meta = meta;
    if ((rc = s3_req_url(s, &r, key, "uploads=")) != VX_OK) goto oom;
    if ((rc = s3_perform(s, curl, &r, key, err, reason, rlen)) != VX_OK) goto done;
    if (!s3_xml_text(r.resp, "UploadId", upload_id, sizeof(upload_id)) || !upload_id[0] ||
        !s3_urlencode(upload_id, enc, sizeof(enc))) {
        snprintf(reason, rlen, "no UploadId");
        s3_seterr(err, VX_EPROTO, 1, (int)r.status,
                  "CreateMultipartUpload answered without a usable UploadId (s3://%s/%s)",
                  s->bucket, key);
        rc = VX_EPROTO;
        goto done;
    }
    s->api->log(s->h, VX_LOG_DEBUG, "multipart upload of s3://%s/%s started: %u parts of %llu bytes",
                s->bucket, key, n, (unsigned long long)part);

    if (!(etags = calloc(n, sizeof(*etags)))) goto oom_abort;
    r.meta = NULL;
    r.fd = fd;
    r.ctype = NULL;
    for (i = 0; i < n; i++) {
        char what[48];
        snprintf(what, sizeof(what), "UploadPart %u/%u", i + 1, n);
        snprintf(query, sizeof(query), "partNumber=%u&uploadId=%s", i + 1, enc);
        r.method = "PUT";
        r.what = what;
        r.off = (uint64_t)i * part;
        r.len = size - r.off < part ? size - r.off : part;
        if (s3_req_url(s, &r, key, query) != VX_OK) goto oom_abort;
        if ((rc = s3_perform(s, curl, &r, key, err, reason, rlen)) != VX_OK) goto abort;
        if (!r.etag[0]) {
            snprintf(reason, rlen, "no ETag");
            s3_seterr(err, VX_EPROTO, 1, (int)r.status, "%s answered without an ETag (s3://%s/%s)",
                      what, s->bucket, key);
            rc = VX_EPROTO;
            goto abort;
        }
        memcpy(etags[i], r.etag, sizeof(etags[i]));
    }

    /* <CompleteMultipartUpload> with every part's number and ETag; ETags
     * are quoted tokens, escaped anyway. */
    xcap = 64 + (size_t)n * (64 + 6 * sizeof(etags[0]));
    if (!(xml = malloc(xcap))) goto oom_abort;
    xl = (size_t)snprintf(xml, xcap, "<CompleteMultipartUpload>");
    for (i = 0; i < n; i++) {
        xl += (size_t)snprintf(xml + xl, xcap - xl, "<Part><PartNumber>%u</PartNumber><ETag>", i + 1);
        for (const char *p = etags[i]; *p; p++) {
            const char *esc = *p == '&' ? "&amp;" : *p == '<' ? "&lt;" : *p == '>' ? "&gt;"
                              : *p == '"' ? "&quot;" : NULL;
            if (esc) xl += (size_t)snprintf(xml + xl, xcap - xl, "%s", esc);
            else xml[xl++] = *p;
        }
        xl += (size_t)snprintf(xml + xl, xcap - xl, "</ETag></Part>");
    }
    xl += (size_t)snprintf(xml + xl, xcap - xl, "</CompleteMultipartUpload>");
    snprintf(query, sizeof(query), "uploadId=%s", enc);
    r.method = "POST";
    r.what = "CompleteMultipartUpload";
    r.fd = -1;
    r.body = xml;
    r.body_len = xl;
    r.ctype = "application/xml";
    if (s3_req_url(s, &r, key, query) != VX_OK) goto oom_abort;
    if ((rc = s3_perform(s, curl, &r, key, err, reason, rlen)) != VX_OK) goto abort;
    /* S3 may answer 200 and then report a failure in the body. */
    if (r.resp && strstr(r.resp, "<Error>")) {
        s3_answer_error(s, &r, key, err, reason, rlen);
        if (err->code == VX_EPROTO) { /* S3 documents these as transient */
            err->code = VX_EUNAVAIL;
            err->retryable = 1;
        }
        rc = err->code;
        goto abort;
    }
    rc = VX_OK;
    goto done;

oom_abort:
    snprintf(reason, rlen, "out of memory");
    s3_seterr(err, VX_ENOMEM, 1, 0, "out of memory during the multipart upload of s3://%s/%s",
              s->bucket, key);
    rc = VX_ENOMEM;
abort:
    snprintf(query, sizeof(query), "uploadId=%s", enc);
    s3_abort(s, curl, key, query);
    goto done;
oom:
    snprintf(reason, rlen, "out of memory");
    s3_seterr(err, VX_ENOMEM, 1, 0, "out of memory starting the upload of s3://%s/%s",
              s->bucket, key);
    rc = VX_ENOMEM;
done:
    s3_req_clear(&r);
    free(etags);
    free(xml);
    return rc;
}

/* ---------------------------------------------------------------- health */

static void s3_outcome(s3_sink *s, int rc, const char *reason, const vx_error *err) {
    uint64_t now = s->api->now_ns();
    unsigned prev_fails;

    pthread_mutex_lock(&s->mu);
    prev_fails = s->fails_in_row;
    if (rc == VX_OK) {
        s->n_ok++;
        s->fails_in_row = 0;
        s->last_ok_ns = now;
    } else {
        s->n_failed++;
        s->fails_in_row++;
        s->last_fail_ns = now;
        s->last_code = rc;
        snprintf(s->last_reason, sizeof(s->last_reason), "%s", reason);
    }
    pthread_mutex_unlock(&s->mu);
    /* Log state changes only; every failure reaches the host in vx_error. */
    if (rc != VX_OK && prev_fails == 0)
        s->api->log(s->h, VX_LOG_WARN, "uploads to s3://%s failing: %s", s->bucket, err->msg);
    else if (rc == VX_OK && prev_fails > 0)
        s->api->log(s->h, VX_LOG_INFO, "uploads to s3://%s work again after %u failure%s",
                    s->bucket, prev_fails, prev_fails == 1 ? "" : "s");
}

/* Reports the last outcome; no network I/O. Nonzero while the last upload
 * failed. */
static int s3_health(void *inst, char *buf, size_t len) {
    s3_sink *s = inst;
    uint64_t now = s->api->now_ns();
    int rc = VX_OK;

    pthread_mutex_lock(&s->mu);
    if (s->fails_in_row > 0) {
        snprintf(buf, len, "failing: %s (%u in a row, last %llus ago)", s->last_reason,
                 s->fails_in_row, (unsigned long long)((now - s->last_fail_ns) / 1000000000ull));
        rc = s->last_code;
    } else if (s->n_ok > 0) {
        snprintf(buf, len, "ok: last upload %llus ago (%llu uploaded)",
                 (unsigned long long)((now - s->last_ok_ns) / 1000000000ull), s->n_ok);
    } else {
        snprintf(buf, len, "ok: no upload yet (s3://%s/%s)", s->bucket, s->prefix);
    }
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* ---------------------------------------------------------------- upload */

static int s3_upload(void *inst, const vx_recording *rec, vx_error *err) {
    s3_sink *s = inst;
    char key[1200], reason[S3_REASON] = "";
    struct curl_slist *meta = NULL;
    CURL *curl = NULL;
    s3_req r = {.fd = -1};
    struct stat st;
    uint64_t t0 = s->api->now_ns();
    unsigned parts = 0;
    int fd = -1, oom, rc;
    const char *why = NULL;
    vx_error local = {0};

    if (!err) err = &local;
    if ((rc = s3_object_key(s, rec, key, sizeof(key), err)) != VX_OK) {
        snprintf(reason, sizeof(reason), "bad object name");
        goto done;
    }
    if (!rec->path) why = "no path given";
    else if ((fd = open(rec->path, O_RDONLY | O_CLOEXEC)) < 0 || fstat(fd, &st) != 0)
        why = strerror(errno);
    else if (!S_ISREG(st.st_mode))
        why = "not a regular file";
    if (why) {
        rc = VX_EINVAL;
        snprintf(reason, sizeof(reason), "cannot read the file");
        s3_seterr(err, rc, 0, 0, "cannot read %.150s: %s", rec->path ? rec->path : "the file",
                  why);
        goto done;
    }
    meta = s3_meta(s, rec, &oom);
    if (oom || !(curl = curl_easy_init())) {
        rc = VX_ENOMEM;
        snprintf(reason, sizeof(reason), "out of memory");
        s3_seterr(err, rc, 1, 0, "out of memory preparing the upload of s3://%s/%s", s->bucket,
                  key);
        goto done;
    }

    /* The file's size now is what goes up: the host finished writing it. */
    if ((uint64_t)st.st_size > s->threshold) {
        rc = s3_multipart(s, curl, rec, fd, (uint64_t)st.st_size, key, meta, err, reason,
                          sizeof(reason), &parts);
    } else {
        r.method = "PUT";
        r.what = "PUT";
        r.ctype = s3_ctype(rec);
        r.meta = meta;
        r.fd = fd;
        r.off = 0;
        r.len = (uint64_t)st.st_size;
        if ((rc = s3_req_url(s, &r, key, NULL)) != VX_OK) {
            snprintf(reason, sizeof(reason), "out of memory");
            s3_seterr(err, rc, 1, 0, "out of memory preparing the upload");
        } else {
            rc = s3_perform(s, curl, &r, key, err, reason, sizeof(reason));
        }
    }
    if (rc == VX_OK) {
        uint64_t ms = (s->api->now_ns() - t0) / 1000000;
        if (parts)
            s->api->log(s->h, VX_LOG_INFO, "uploaded s3://%s/%s: %llu bytes in %u parts, %llu ms",
                        s->bucket, key, (unsigned long long)st.st_size, parts,
                        (unsigned long long)ms);
        else
            s->api->log(s->h, VX_LOG_DEBUG, "uploaded s3://%s/%s: %llu bytes, %llu ms", s->bucket,
                        key, (unsigned long long)st.st_size, (unsigned long long)ms);
        if (s->m_bytes) s->api->metric_add(s->m_bytes, (double)st.st_size);
    }
done:
    s3_outcome(s, rc, reason, err);
    s3_req_clear(&r);
    if (curl) curl_easy_cleanup(curl);
    curl_slist_free_all(meta);
    if (fd >= 0) close(fd);
    return rc;
}

static const vx_sink_vtable s3_vtable = {
    .struct_size = sizeof(vx_sink_vtable),
    .upload = s3_upload,
};

/* ---------------------------------------------------------------- lifecycle */

static void s3_wipe_free(char *p) {
    if (!p) return;
    for (volatile char *q = p; *q; q++) *q = '\0';
    free(p);
}

static void s3_free(s3_sink *s) {
    if (!s) return;
    free(s->base);
    free(s->bucket);
    free(s->prefix);
    free(s->akid);
    s3_wipe_free(s->secret);
    s3_wipe_free(s->token);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* The configured value, else the environment's; *from names the source. */
static const char *s3_cred(s3_sink *s, const char *key, const char *env, const char **from) {
    const char *v = s3_cfg(s, key);

    *from = key;
    if (*v) return v;
    *from = env;
    v = getenv(env);
    return v && *v ? v : NULL;
}

/* Base URL for the bucket from the endpoint, path or virtual-host style.
 * Returns VX_OK or VX_EINVAL/VX_ENOMEM with err filled. */
static int s3_make_base(s3_sink *s, const char *endpoint, int path_style, vx_error *err) {
    CURLU *u = curl_url();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    size_t n, pl;
    int rc = VX_ENOMEM;

    if (!u) goto fail;
    if (curl_url_set(u, CURLUPART_URL, endpoint, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
        curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
        (strcmp(scheme, "http") != 0 && strcmp(scheme, "https") != 0) ||
        curl_url_get(u, CURLUPART_QUERY, &query, 0) == CURLUE_OK) {
        rc = VX_EINVAL;
        s3_seterr(err, rc, 0, 0, "rec_s3: endpoint '%.160s' is not an http(s)://host[:port] URL",
                  endpoint);
        goto fail;
    }
    curl_url_get(u, CURLUPART_PORT, &port, 0);
    if (curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK) path = NULL;
    pl = path ? strlen(path) : 0;
    while (pl && path[pl - 1] == '/') pl--;
    n = strlen(scheme) + strlen(host) + (port ? strlen(port) : 0) + pl + strlen(s->bucket) + 16;
    if (!(s->base = malloc(n))) goto fail;
    if (path_style)
        snprintf(s->base, n, "%s://%s%s%s%.*s/%s", scheme, host, port ? ":" : "", port ? port : "",
                 (int)pl, path ? path : "", s->bucket);
    else
        snprintf(s->base, n, "%s://%s.%s%s%s%.*s", scheme, s->bucket, host, port ? ":" : "",
                 port ? port : "", (int)pl, path ? path : "");
    rc = VX_OK;
fail:
    if (rc == VX_ENOMEM) s3_seterr(err, rc, 0, 0, "rec_s3: out of memory");
    curl_free(scheme);
    curl_free(host);
    curl_free(port);
    curl_free(path);
    curl_free(query);
    curl_url_cleanup(u);
    return rc;
}

static int s3_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                   vx_error *err) {
    const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);
    const char *v, *akid, *secret, *token, *akid_from, *secret_from, *token_from;
    char instance[64];
    s3_sink *s;
    int rc = VX_ENOMEM, path_style = 0, curl_up = 0;
    size_t n;

    if (!cv || cv->version_num < 0x074b00) { /* 7.75.0: CURLOPT_AWS_SIGV4 */
        s3_seterr(err, VX_ENOTSUP, 0, 0, "rec_s3: libcurl %s is too old (7.75 or later signs "
                  "S3 requests)", cv ? cv->version : "?");
        return VX_ENOTSUP;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        s3_seterr(err, VX_ENOMEM, 0, 0, "rec_s3: out of memory");
        return VX_ENOMEM;
    }
    pthread_mutex_init(&s->mu, NULL);
    s->api = host;
    s->h = h;
    n = 0;
    for (const char *p = cfg && cfg->instance ? cfg->instance : "s3"; *p && n + 1 < sizeof(instance); p++)
        instance[n++] = isalnum((unsigned char)*p) ? (char)toupper((unsigned char)*p) : '_';
    instance[n] = '\0';

    v = s3_cfg(s, "bucket");
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr("._-", *p)) v = "";
    if (!*v) {
        rc = VX_EINVAL;
        s3_seterr(err, rc, 0, 0, "rec_s3: bucket '%.100s' is empty or not a bucket name "
                  "(A-Z a-z 0-9 . _ -)", s3_cfg(s, "bucket"));
        goto fail;
    }
    if (!(s->bucket = strdup(v))) goto oom;

    v = s3_cfg(s, "region");
    for (const char *p = v; *p; p++)
        if (!isalnum((unsigned char)*p) && *p != '-') v = "";
    if (!*v) {
        rc = VX_EINVAL;
        s3_seterr(err, rc, 0, 0, "rec_s3: region '%.64s' is not a region name",
                  s3_cfg(s, "region"));
        goto fail;
    }
    snprintf(s->sigv4, sizeof(s->sigv4), "aws:amz:%s:s3", v);

    /* prefix: leading and trailing '/' dropped, then exactly one '/' before
     * the name. */
    v = s3_cfg(s, "prefix");
    while (*v == '/') v++;
    n = strlen(v);
    while (n && v[n - 1] == '/') n--;
    if (!(s->prefix = malloc(n + 2))) goto oom;
    memcpy(s->prefix, v, n);
    s->prefix[n] = '\0';
    if (n && !s3_key_ok(s->prefix)) {
        rc = VX_EINVAL;
        s3_seterr(err, rc, 0, 0, "rec_s3: prefix '%.100s' may hold only A-Z a-z 0-9 . _ - ~ / "
                  "and no empty, . or .. segment", s3_cfg(s, "prefix"));
        goto fail;
    }
    if (n) strcat(s->prefix, "/");

    path_style = s3_bool(s, "path_style", 0);
    s->metadata = s3_bool(s, "metadata", 1);
    if ((rc = s3_make_base(s, s3_cfg(s, "endpoint"), path_style, err)) != VX_OK) goto fail;

    s->threshold = s3_size(s, "multipart_threshold", 16777216);
    s->part_size = s3_size(s, "part_size", 8388608);
    if (s->threshold < S3_MIN_PART) s->threshold = S3_MIN_PART;
    if (s->threshold > S3_MAX_PART) s->threshold = S3_MAX_PART;
    if (s->part_size < S3_MIN_PART) s->part_size = S3_MIN_PART;
    if (s->part_size > S3_MAX_PART) s->part_size = S3_MAX_PART;
    s->connect_ms = s3_ms(s, "connect_timeout", 5000);
    s->timeout_ms = s3_ms(s, "timeout", 60000);
    s->stall_s = (s3_ms(s, "stall_timeout", 20000) + 999) / 1000;
    if (s->connect_ms < 1) s->connect_ms = 1;
    if (s->timeout_ms < 1) s->timeout_ms = 1;

    /* Credentials: each key from the config, else from the environment. A
     * session token belongs to its key pair, so $AWS_SESSION_TOKEN is only
     * taken with $AWS_ACCESS_KEY_ID. */
    akid = s3_cred(s, "access_key_id", "AWS_ACCESS_KEY_ID", &akid_from);
    secret = s3_cred(s, "secret_access_key", "AWS_SECRET_ACCESS_KEY", &secret_from);
    v = s3_cfg(s, "session_token");
    token = *v ? v : NULL;
    token_from = "session_token";
    if (!token && akid && strcmp(akid_from, "AWS_ACCESS_KEY_ID") == 0) {
        token = getenv("AWS_SESSION_TOKEN");
        token_from = "AWS_SESSION_TOKEN";
        if (token && !*token) token = NULL;
    }
    if (!akid || !secret) {
        rc = VX_EINVAL;
        s3_seterr(err, rc, 0, 0, "rec_s3: no credentials: %s%s%s missing; set access_key_id and "
                  "secret_access_key (VOXRAY_PLUGIN_%s_...) or AWS_ACCESS_KEY_ID and "
                  "AWS_SECRET_ACCESS_KEY",
                  akid ? "" : "access key id", !akid && !secret ? " and " : "",
                  secret ? "" : "secret access key", instance);
        goto fail;
    }
    if (strpbrk(akid, "\r\n:") || strpbrk(secret, "\r\n") || (token && strpbrk(token, "\r\n"))) {
        rc = VX_EINVAL;
        s3_seterr(err, rc, 0, 0, "rec_s3: a credential contains a line break (or the key id a ':')");
        goto fail;
    }
    if (!(s->akid = strdup(akid)) || !(s->secret = strdup(secret)) ||
        (token && !(s->token = strdup(token))))
        goto oom;

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        rc = VX_EINTERNAL;
        s3_seterr(err, rc, 0, 0, "rec_s3: curl_global_init failed");
        goto fail;
    }
    curl_up = 1;
    if (VX_HOST_HAS(host, metric_add) && host->metric_register && host->metric_add)
        s->m_bytes = host->metric_register(h, VX_METRIC_COUNTER, "rec_s3_uploaded_bytes_total",
                                           "bytes of recordings uploaded to S3");

    host->log(h, VX_LOG_INFO,
              "s3://%s/%s via %s (%s-style, region %s), key id %s from %s, secret from %s, session "
              "token %s%s; multipart above %llu bytes in %llu-byte parts",
              s->bucket, s->prefix, s3_cfg(s, "endpoint"), path_style ? "path" : "virtual-host",
              s3_cfg(s, "region"), s->akid, akid_from, secret_from, s->token ? "from " : "none",
              s->token ? token_from : "", s->threshold, s->part_size);
    *inst = s;
    return VX_OK;

oom:
    rc = VX_ENOMEM;
    s3_seterr(err, rc, 0, 0, "rec_s3: out of memory");
fail:
    if (curl_up) curl_global_cleanup();
    s3_free(s);
    return rc;
}

static void s3_shutdown(void *inst) {
    s3_free(inst);
    curl_global_cleanup();
}

static const vx_plugin_info s3_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_SINK,
    .name = "rec_s3",
    .version = S3_VERSION,
    .description = "recording sink: uploads finished recordings to S3 (SigV4, multipart)",
    .caps = VX_CAP_NETWORK,
    .config = s3_config,
    .init = s3_init,
    .shutdown = s3_shutdown,
    .sink = &s3_vtable,
    .health = s3_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* log, now_ns and config_get exist since 1.0, the typed config getters
     * since 1.6. */
    if (!host || host->abi_major != VX_ABI_MAJOR || !VX_HOST_HAS(host, config_size) ||
        !host->config_duration_ms || !host->config_size || !host->config_bool) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, "rec_s3 needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &s3_info;
}
