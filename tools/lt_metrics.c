/*
 * Reading the server's latency histograms from /metrics (see lt_metrics.h).
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "lt_metrics.h"

#define MAX_BODY (64u << 20)

const char *const lt_metric_names[LT_M_COUNT] = {
    "stt_time_to_first_token_seconds",
    "stt_transcription_latency_seconds",
    "llm_time_to_first_token_seconds",
    "tts_time_to_first_audio_chunk_seconds",
    "voxray_turn_latency_seconds",
};

typedef struct series {
    int family;
    char *labels;       /* "{...}" as printed, or "" */
    double sum, count;
} series;

struct lt_metrics {
    series *s;
    size_t n, cap;
};

typedef struct body {
    char *p;
    size_t len;
    int too_big;
} body;

static size_t on_data(char *ptr, size_t size, size_t nmemb, void *user) {
    body *b = user;
    size_t n = size * nmemb;
    char *q;
    if (b->len + n > MAX_BODY) {
        b->too_big = 1;
        return 0;
    }
    q = realloc(b->p, b->len + n + 1);
    if (!q) return 0;
    b->p = q;
    memcpy(b->p + b->len, ptr, n);
    b->len += n;
    b->p[b->len] = '\0';
    return n;
}

/* The series of (family, labels), created when missing. NULL: no memory. */
static series *find(lt_metrics *m, int f, const char *labels, size_t llen, int create) {
    for (size_t i = 0; i < m->n; i++)
        if (m->s[i].family == f && strlen(m->s[i].labels) == llen &&
            memcmp(m->s[i].labels, labels, llen) == 0)
            return &m->s[i];
    if (!create) return NULL;
    if (m->n == m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 32;
        series *p = realloc(m->s, cap * sizeof(*p));
        if (!p) return NULL;
        m->s = p;
        m->cap = cap;
    }
    series *s = &m->s[m->n];
    s->labels = strndup(labels, llen);
    if (!s->labels) return NULL;
    s->family = f;
    s->sum = s->count = 0;
    m->n++;
    return s;
}

/* One exposition line: NAME[{labels}] VALUE [TIMESTAMP]. Only the _sum and
 * _count lines of our families matter; everything else is skipped. */
static int parse_line(lt_metrics *m, const char *line, size_t len) {
    size_t name_end = 0, lab_start, lab_end;
    int f, is_sum;
    char num[64];

    while (name_end < len && line[name_end] != '{' && line[name_end] != ' ') name_end++;
    for (f = 0; f < LT_M_COUNT; f++) {
        size_t fl = strlen(lt_metric_names[f]);
        if (name_end == fl + 4 && memcmp(line, lt_metric_names[f], fl) == 0 &&
            memcmp(line + fl, "_sum", 4) == 0) {
            is_sum = 1;
            break;
        }
        if (name_end == fl + 6 && memcmp(line, lt_metric_names[f], fl) == 0 &&
            memcmp(line + fl, "_count", 6) == 0) {
            is_sum = 0;
            break;
        }
    }
    if (f == LT_M_COUNT) return 0;
    lab_start = lab_end = name_end;
    if (lab_end < len && line[lab_end] == '{') {
        /* Label values are quoted and may hold an escaped quote or '}'. */
        int quoted = 0;
        for (lab_end++; lab_end < len; lab_end++) {
            char c = line[lab_end];
            if (quoted && c == '\\') {
                lab_end++;
            } else if (c == '"') {
                quoted = !quoted;
            } else if (!quoted && c == '}') {
                lab_end++;
                break;
            }
        }
    }
    size_t v = lab_end;
    while (v < len && line[v] == ' ') v++;
    size_t ve = v;
    while (ve < len && line[ve] != ' ') ve++;
    if (ve == v || ve - v >= sizeof(num)) return 0;
    memcpy(num, line + v, ve - v);
    num[ve - v] = '\0';
    char *end;
    double val = strtod(num, &end);
    if (*end) return 0;
    series *s = find(m, f, line + lab_start, lab_end - lab_start, 1);
    if (!s) return -1;
    if (is_sum)
        s->sum = val;
    else
        s->count = val;
    return 0;
}

lt_metrics *lt_metrics_fetch(const char *url, int insecure, char *err, size_t errlen) {
    CURL *h = NULL;
    body b = {NULL, 0, 0};
    lt_metrics *m = NULL;
    long status = 0;
    CURLcode rc;

    h = curl_easy_init();
    m = calloc(1, sizeof(*m));
    if (!h || !m) {
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "voxray-loadtest");
    if (insecure) {
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    rc = curl_easy_perform(h);
    if (rc != CURLE_OK) {
        snprintf(err, errlen, "%s", b.too_big ? "page over 64 MiB" : curl_easy_strerror(rc));
        goto fail;
    }
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status != 200) {
        snprintf(err, errlen, "HTTP status %ld", status);
        goto fail;
    }
    for (size_t i = 0; b.p && i < b.len;) {
        size_t e = i;
        while (e < b.len && b.p[e] != '\n') e++;
        if (b.p[i] != '#' && parse_line(m, b.p + i, e - i) != 0) {
            snprintf(err, errlen, "out of memory");
            goto fail;
        }
        i = e + 1;
    }
    curl_easy_cleanup(h);
    free(b.p);
    return m;

fail:
    if (h) curl_easy_cleanup(h);
    free(b.p);
    lt_metrics_free(m);
    return NULL;
}

double lt_metrics_delta(const lt_metrics *start, const lt_metrics *end, int f, double *mean) {
    double sum = 0, count = 0;
    for (size_t i = 0; i < end->n; i++) {
        const series *e = &end->s[i];
        if (e->family != f) continue;
        const series *s = find((lt_metrics *)start, f, e->labels, strlen(e->labels), 0);
        double dc = e->count - (s ? s->count : 0), ds = e->sum - (s ? s->sum : 0);
        if (dc <= 0) continue; /* a series reset or replaced: nothing to learn */
        count += dc;
        sum += ds;
    }
    if (count > 0) *mean = sum / count;
    return count;
}

void lt_metrics_free(lt_metrics *m) {
    if (!m) return;
    for (size_t i = 0; i < m->n; i++) free(m->s[i].labels);
    free(m->s);
    free(m);
}
