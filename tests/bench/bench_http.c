/*
 * A keep-alive HTTP load client for one URL (libcurl, one connection per
 * thread, each reused for every request). Runs for SECONDS and prints one
 * line: requests/s, latency p50/p90/p99/max in microseconds, failures
 * (a status other than 200 or a body other than EXPECT) and the number of
 * requests that succeeded. Never fails on
 * time; exits 1 only when it could not run at all or every request failed.
 *
 *   tests/bench/bench_http URL SECONDS CONNECTIONS [EXPECT]
 */
#include "config.h"

#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    const char *url, *expect;
    double end;     /* monotonic deadline */
    uint32_t *lat;  /* latencies in 0.1 us units */
    size_t n, cap;
    long failed;
    char body[64];
    size_t body_len;
} conn;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t on_body(char *p, size_t size, size_t nmemb, void *user)
{
    conn *c = user;
    size_t n = size * nmemb, room = sizeof c->body - 1 - c->body_len;

    memcpy(c->body + c->body_len, p, n < room ? n : room);
    c->body_len += n < room ? n : room;
    return n;
}

static void *run(void *p)
{
    conn *c = p;
    CURL *h = curl_easy_init();

    if (h == NULL) return NULL;
    curl_easy_setopt(h, CURLOPT_URL, c->url);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(h, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT, 5L);
    for (;;) {
        double t0 = now_s(), t1;
        long code = 0;
        CURLcode rc;

        if (t0 >= c->end) break;
        c->body_len = 0;
        rc = curl_easy_perform(h);
        t1 = now_s();
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        c->body[c->body_len] = '\0';
        if (rc != CURLE_OK || code != 200 || (c->expect && strcmp(c->body, c->expect) != 0)) {
            c->failed++;
            continue;
        }
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 65536;
            uint32_t *l = realloc(c->lat, cap * sizeof *l);
            if (l == NULL) break;
            c->lat = l;
            c->cap = cap;
        }
        c->lat[c->n++] = (uint32_t)((t1 - t0) * 1e7);
    }
    curl_easy_cleanup(h);
    return NULL;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
    conn *c;
    pthread_t *t;
    uint32_t *all;
    size_t n = 0, k;
    long failed = 0;
    double secs, t0;
    int nc, i, rc = 0;

    if (argc < 4 || (secs = atof(argv[2])) <= 0 || (nc = atoi(argv[3])) <= 0 || nc > 256) {
        fprintf(stderr, "usage: bench_http URL SECONDS CONNECTIONS [EXPECT]\n");
        return 2;
    }
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != 0) return 2;
    c = calloc((size_t)nc, sizeof *c);
    t = calloc((size_t)nc, sizeof *t);
    if (c == NULL || t == NULL) return 2;
    t0 = now_s();
    for (i = 0; i < nc; i++) {
        c[i].url = argv[1];
        c[i].expect = argc > 4 ? argv[4] : NULL;
        c[i].end = t0 + secs;
        if (pthread_create(&t[i], NULL, run, &c[i]) != 0) return 2;
    }
    for (i = 0; i < nc; i++) {
        pthread_join(t[i], NULL);
        n += c[i].n;
        failed += c[i].failed;
    }
    secs = now_s() - t0;
    all = malloc((n ? n : 1) * sizeof *all);
    if (all == NULL) return 2;
    for (i = 0, k = 0; i < nc; i++) {
        memcpy(all + k, c[i].lat, c[i].n * sizeof *all);
        k += c[i].n;
        free(c[i].lat);
    }
    qsort(all, n, sizeof *all, cmp_u32);
    if (n == 0) {
        printf("%10.0f req/s  no successful request, %ld failed\n", 0.0, failed);
        rc = 1;
    } else {
        printf("%10.0f req/s  latency us: p50 %7.1f  p90 %7.1f  p99 %7.1f  max %8.1f  failed %ld  requests %zu\n",
               (double)n / secs, all[n / 2] / 10.0, all[n * 9 / 10] / 10.0, all[n * 99 / 100] / 10.0,
               all[n - 1] / 10.0, failed, n);
    }
    free(all);
    free(c);
    free(t);
    curl_global_cleanup();
    return rc;
}
