/*
 * Latency samples and error counters for voxray-loadtest (see lt_stats.h).
 */
#include "config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lt_stats.h"

int lt_samples_add(lt_samples *s, int64_t us) {
    uint32_t v = us < 0 ? 0 : us > (int64_t)UINT32_MAX ? UINT32_MAX : (uint32_t)us;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        uint32_t *p = realloc(s->v, cap * sizeof(*p));
        if (!p) return -1;
        s->v = p;
        s->cap = cap;
    }
    s->v[s->n++] = v;
    s->sum += v;
    return 0;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

int lt_samples_sort(lt_samples *s) {
    size_t head = s->sorted, tail = s->n - s->sorted, i = 0, j = 0, k = 0;
    uint32_t *tmp;

    if (tail == 0) return 0;
    qsort(s->v + head, tail, sizeof(*s->v), cmp_u32);
    if (head == 0 || s->v[head - 1] <= s->v[head]) {
        s->sorted = s->n;
        return 0;
    }
    /* Merge the sorted head with the freshly sorted tail through a copy of
     * the head. */
    tmp = malloc(head * sizeof(*tmp));
    if (!tmp) return -1;
    memcpy(tmp, s->v, head * sizeof(*tmp));
    while (i < head && j < tail) {
        if (tmp[i] <= s->v[head + j])
            s->v[k++] = tmp[i++];
        else
            s->v[k++] = s->v[head + j++];
    }
    while (i < head) s->v[k++] = tmp[i++];
    /* What is left of the tail is already in place. */
    free(tmp);
    s->sorted = s->n;
    return 0;
}

uint32_t lt_samples_pct(const lt_samples *s, double p) {
    size_t n = s->sorted, rank;
    if (n == 0) return 0;
    rank = (size_t)ceil(p / 100.0 * (double)n);
    if (rank < 1) rank = 1;
    if (rank > n) rank = n;
    return s->v[rank - 1];
}

double lt_samples_mean(const lt_samples *s) {
    return s->n ? (double)s->sum / (double)s->n : 0.0;
}

void lt_samples_free(lt_samples *s) {
    free(s->v);
    memset(s, 0, sizeof(*s));
}

static int lt_errors_bump(lt_errors *e, const char *kind) {
    for (int i = 0; i < e->n; i++)
        if (strncmp(e->e[i].kind, kind, LT_KIND_LEN - 1) == 0) {
            e->e[i].count++;
            return 0;
        }
    return -1;
}

void lt_errors_add(lt_errors *e, const char *kind) {
    e->total++;
    if (lt_errors_bump(e, kind) == 0) return;
    /* The last slot is kept for "other". */
    if (e->n >= LT_MAX_KINDS - 1) {
        kind = "other";
        if (lt_errors_bump(e, kind) == 0) return;
    }
    snprintf(e->e[e->n].kind, LT_KIND_LEN, "%s", kind);
    e->e[e->n].count = 1;
    e->n++;
}
