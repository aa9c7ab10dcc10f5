/*
 * Metric registry and Prometheus text exposition (format 0.0.4).
 * See metrics.h for the contract.
 *
 * Locking: the registry mutex guards the family list and the bucket
 * overrides; each family mutex guards its series hash, its live list and its
 * removed list. Order is registry -> family (render is the only path that
 * takes both). Updates through a handle take no lock at all.
 *
 * Shards: every series carries a small fixed number of shards (the CPU count
 * rounded up to a power of two, at most METRICS_MAX_SHARDS), each on its
 * own cache lines. An update adds to the shard of the CPU it runs on
 * (shard_here()), so threads running at the same time on different CPUs
 * never write the same line; readers sum the shards. Every shard word only
 * grows (counters, bucket counts, histogram sums), so a sum of shards read
 * one after the other is never smaller than an earlier sum: a scrape cannot
 * go backwards, and _count is the sum of the bucket counts it printed.
 * Atomics are still needed inside a shard (two threads can take turns on
 * one CPU, or migrate between reading the CPU id and adding), but they stay
 * on a line the running CPU already owns.
 *
 * Gauges: add() shards like a counter (integral deltas in an integer word,
 * so adding and removing 1 stays exact; other deltas in a double word).
 * set() cannot shard: it writes the base value and zeroes the shards inside
 * a sequence lock (gseq odd while it runs), and readers retry when they
 * overlap a set(), so they never see the base of one set() with the deltas
 * of before it. An add() racing with a set() either lands in a shard before
 * it is zeroed (ordered before the set) or after (ordered after it), so a
 * gauge holds either outcome, never a mix. set() is therefore a few atomics
 * on shared lines rather than one store; it is the rare operation.
 *
 * Reference counting: a live series holds one reference for its family plus
 * one per handle. Removal drops the family's reference and parks the series
 * on the family's removed list while handles remain, so the last
 * metrics_series_release() knows the series is unlinked and frees it, and
 * metrics_registry_free() can still find (and free) anything a caller forgot
 * to release.
 */
#include "config.h"

#include "metrics.h"

#include <assert.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <sched.h>
#include <stdalign.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#if defined(__GLIBC__) && defined(__has_include)
#if __has_include(<sys/rseq.h>)
#include <sys/rseq.h>
#define METRICS_RSEQ 1
#endif
#endif

#define METRICS_LINE 64 /* cache line size the hot words are aligned to */
/* Upper bound on shards per series: memory per series grows with it (a
 * default histogram shard is two lines), contention falls with it. Machines
 * with more CPUs share shards (CPU id modulo the count). */
#define METRICS_MAX_SHARDS 8

static const double metrics_default_bounds[] = {
    .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10};

struct metrics_series {
    /* Cold part: written only under the family lock or by get/release. */
    metrics_series *next, *prev; /* live list, or removed list once unlinked */
    metrics_series *hnext;       /* hash chain (live series only) */
    uint64_t hash;
    atomic_uint refs;
    int linked;
    char *blob;                  /* label values (NUL-separated), then lbl */
    const char *values[METRICS_MAX_LABELS];
    const char *lbl;             /* escaped 'a="x",b="y"', no braces */
    size_t lbl_len;

    /* Read by every update, written only by gauge set(): starts a fresh
     * cache line so the cold part's writes (refs) do not evict it. */
    alignas(METRICS_LINE) metrics_family *fam;
    uint32_t mask;               /* shards - 1 (a power of two minus one) */
    uint32_t stride;             /* bytes from one shard to the next */
    _Atomic uint64_t gseq;       /* gauge: odd while a set() runs */
    _Atomic uint64_t gbase;      /* gauge: value given to the last set() */

    /* The shards follow the struct, each on its own whole cache lines:
     *   counter:   [0] count
     *   gauge:     [0] integral deltas (two's complement), [1] other deltas (double)
     *   histogram: [0] sum in ns, [1 + i] count of bucket i (n_bounds + 1) */
};

_Static_assert(offsetof(struct metrics_series, fam) % METRICS_LINE == 0,
               "hot words must start a cache line");
_Static_assert(sizeof(struct metrics_series) % METRICS_LINE == 0,
               "shards must start a cache line");

/* Shards per series, fixed on the first registry_new(). */
static unsigned shard_count = 1;
static pthread_once_t shard_once = PTHREAD_ONCE_INIT;

static void shard_init(void)
{
    long n = sysconf(_SC_NPROCESSORS_CONF);
    unsigned c = 1;

    while ((long)c < n && c < METRICS_MAX_SHARDS) c <<= 1;
    shard_count = c;
}

/* Fallback when sched_getcpu() fails: a per-thread number, handed out in
 * turn, so distinct threads at least start on distinct shards. */
static _Thread_local unsigned tl_slot;
static atomic_uint slot_next;

/* The shard index for the calling thread right now (masked by the caller).
 * glibc >= 2.35 registers an rseq area for every thread in which the kernel
 * keeps the current CPU id; reading that field is what sched_getcpu() does,
 * minus the call through the PLT (1.5 ns here, a quarter of an uncontended
 * counter add).
 * Without rseq, sched_getcpu() (vDSO getcpu). Migrating right after the
 * read only costs contention, never correctness: shards are atomics. */
static inline unsigned shard_here(void)
{
    int c;

#if METRICS_RSEQ && (defined(__x86_64__) || defined(__aarch64__))
    if (__rseq_size > 0) {
        const struct rseq *rs =
            (const struct rseq *)((char *)__builtin_thread_pointer() + __rseq_offset);
        c = (int)__atomic_load_n(&rs->cpu_id, __ATOMIC_RELAXED);
        if (c >= 0) return (unsigned)c;
    }
#endif
    c = sched_getcpu();
    if (c >= 0) return (unsigned)c;
    if (tl_slot == 0) tl_slot = atomic_fetch_add(&slot_next, 1) + 1;
    return tl_slot;
}

static inline _Atomic uint64_t *shard_at(const metrics_series *s, unsigned i)
{
    return (_Atomic uint64_t *)((char *)(s + 1) + (size_t)(i & s->mask) * s->stride);
}

/* Sum of word w over every shard (wrapping, which two's complement gauge
 * deltas rely on). */
static uint64_t shard_sum(const metrics_series *s, size_t w)
{
    uint64_t v = 0;
    unsigned i;

    for (i = 0; i <= s->mask; i++)
        v += atomic_load_explicit(&shard_at(s, i)[w], memory_order_relaxed);
    return v;
}

struct metrics_family {
    /* Read-only after creation (the hot path reads type and bounds). */
    metrics_registry *reg;
    metrics_family *next;        /* registry list, registration order */
    metrics_type type;
    char *name;
    size_t name_len;
    char *head;                  /* "# HELP ...\n# TYPE ...\n" */
    size_t head_len;
    size_t n_labels;
    char *label_names[METRICS_MAX_LABELS];
    size_t n_bounds;
    double bounds[METRICS_MAX_BUCKETS];
    /* The same bounds for observe_ns(): bound i holds ns when ns <= ns_le[i];
     * bounds below zero hold none, so the search starts at ns_first. */
    uint64_t ns_le[METRICS_MAX_BUCKETS];
    size_t ns_first;
    char *le_blob;               /* 'le="0.005"' ... 'le="+Inf"', NUL-separated */
    const char *le[METRICS_MAX_BUCKETS + 1];
    size_t le_len[METRICS_MAX_BUCKETS + 1];

    /* Mutable, on its own line so taking the lock does not evict the bounds
     * from the cores that are observing. */
    alignas(METRICS_LINE) pthread_mutex_t mu;
    metrics_series **tab;        /* hash buckets, tab_cap a power of two */
    size_t tab_cap;
    size_t n_live;
    metrics_series *first, *last; /* live series in creation order */
    metrics_series *removed;     /* unlinked series still held by handles */
};

typedef struct metrics_override {
    struct metrics_override *next;
    char *name;
    size_t n;
    double bounds[METRICS_MAX_BUCKETS];
} metrics_override;

struct metrics_registry {
    pthread_mutex_t mu;
    metrics_family *first, *last;
    metrics_override *overrides;
    size_t render_hint;          /* size of the previous exposition */
};

/* ------------------------------------------------------------------------ */
/* Output buffer: grows by doubling; a failed growth sets oom and every later
 * write is dropped, so callers check once at the end. */

typedef struct {
    char *p;
    size_t len, cap;
    int oom;
} mbuf;

static int mbuf_grow(mbuf *b, size_t need)
{
    size_t cap = b->cap ? b->cap : 4096;
    char *p;

    if (b->oom) return -1;
    while (cap < b->len + need) {
        if (cap > SIZE_MAX / 2) goto fail;
        cap *= 2;
    }
    p = realloc(b->p, cap);
    if (p == NULL) goto fail;
    b->p = p;
    b->cap = cap;
    return 0;
fail:
    b->oom = 1;
    return -1;
}

static inline void mbuf_put(mbuf *b, const void *s, size_t n)
{
    if (b->cap - b->len < n && mbuf_grow(b, n) != 0) return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

static inline void mbuf_putc(mbuf *b, char c) { mbuf_put(b, &c, 1); }

static size_t fmt_u64(char *dst, uint64_t v)
{
    char t[20];
    size_t n = 0, i;

    do {
        t[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (i = 0; i < n; i++) dst[i] = t[n - 1 - i];
    return n;
}

static inline void mbuf_u64(mbuf *b, uint64_t v)
{
    char t[20];
    mbuf_put(b, t, fmt_u64(t, v));
}

/* ------------------------------------------------------------------------ */
/* Number formatting */

/* Shortest decimal that reads back as v, laid out the way Go's
 * strconv.FormatFloat(v, 'g', -1, 64) does (which is what the Prometheus Go
 * client prints, so our le labels match theirs: 0.005, 1, 2.5, 1e+06).
 * v must be finite. Returns the length written to dst (at most 31).
 *
 * Any decimal of at most 15 significant digits survives a trip through a
 * double, so when 15 digits read back as v, v rounded to 15 digits is the
 * shortest form padded with zeros; otherwise 16 or 17 digits are needed
 * (normal numbers only). */
static size_t fmt_shortest(char *dst, double v)
{
    char t[40];
    int p, nd, exp;
    char *e;

    /* Subnormals carry fewer digits, so the 15-digit argument fails there. */
    for (p = v > -DBL_MIN && v < DBL_MIN ? 1 : 15; p < 17; p++) {
        snprintf(t, sizeof t, "%.*e", p - 1, v);
        if (strtod(t, NULL) == v) break;
    }
    if (p == 17) snprintf(t, sizeof t, "%.*e", p - 1, v);
    e = strchr(t, 'e');
    exp = atoi(e + 1);
    for (nd = p; nd > 1 && e[-1] == '0'; nd--) e--; /* drop padding zeros */
    if (exp < -4 || exp >= 6)
        return (size_t)snprintf(dst, 32, "%.*e", nd - 1, v);
    return (size_t)snprintf(dst, 32, "%.*f", nd - 1 - exp > 0 ? nd - 1 - exp : 0, v);
}

/* Sample value of a gauge: +Inf/-Inf/NaN spelled as Prometheus reads them,
 * integral values as plain integers, anything else shortest round-trip. */
static size_t fmt_double(char *dst, double v)
{
    if (isnan(v)) return (size_t)sprintf(dst, "NaN");
    if (isinf(v)) return (size_t)sprintf(dst, v > 0 ? "+Inf" : "-Inf");
    if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) {
        if (v < 0) {
            dst[0] = '-';
            return 1 + fmt_u64(dst + 1, (uint64_t)-v);
        }
        return fmt_u64(dst, (uint64_t)v);
    }
    return fmt_shortest(dst, v);
}

/* Nanoseconds as exact decimal seconds ("4.208", "0.000000005", "3"). */
static size_t fmt_ns_seconds(char *dst, uint64_t ns)
{
    size_t n = fmt_u64(dst, ns / 1000000000u);
    uint64_t frac = ns % 1000000000u;
    int i;

    if (frac == 0) return n;
    dst[n++] = '.';
    for (i = 8; i >= 0; i--) {
        dst[n + (size_t)i] = (char)('0' + frac % 10);
        frac /= 10;
    }
    n += 9;
    while (dst[n - 1] == '0') n--;
    return n;
}

/* ------------------------------------------------------------------------ */
/* Escaping. Both escapers also replace bytes that are not valid UTF-8 with
 * U+FFFD, because Prometheus rejects the whole scrape on one invalid label
 * value. */

/* Length of the valid UTF-8 sequence at s (n bytes left), or 0. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len, i;
    uint32_t cp;

    if (c < 0x80) return 1;
    if (c >= 0xC2 && c <= 0xDF) { len = 2; cp = c & 0x1F; }
    else if (c >= 0xE0 && c <= 0xEF) { len = 3; cp = c & 0x0F; }
    else if (c >= 0xF0 && c <= 0xF4) { len = 4; cp = c & 0x07; }
    else return 0;
    if (n < len) return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

/* Append s escaped: backslash and newline always, double quote when quote. */
static void escape(mbuf *b, const char *s, int quote)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t n = strlen(s), k;

    while (n > 0) {
        k = 1;
        if (*p == '\\') mbuf_put(b, "\\\\", 2);
        else if (*p == '\n') mbuf_put(b, "\\n", 2);
        else if (*p == '"' && quote) mbuf_put(b, "\\\"", 2);
        else if ((k = utf8_seq(p, n)) != 0) mbuf_put(b, p, k);
        else {
            mbuf_put(b, "\xEF\xBF\xBD", 3);
            k = 1;
        }
        p += k;
        n -= k;
    }
}

/* ------------------------------------------------------------------------ */
/* Validation */

static int name_ok(const char *s, int colon)
{
    const char *p;

    if (s == NULL || *s == '\0') return 0;
    for (p = s; *p; p++) {
        char c = *p;
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
                 (colon && c == ':') || (p != s && c >= '0' && c <= '9');
        if (!ok) return 0;
    }
    return 1;
}

static int bounds_ok(const double *b, size_t n)
{
    size_t i;

    if (b == NULL || n == 0 || n > METRICS_MAX_BUCKETS) return 0;
    for (i = 0; i < n; i++) {
        if (!isfinite(b[i])) return 0;
        if (i > 0 && !(b[i] > b[i - 1])) return 0;
    }
    return 1;
}

/* Would a family `name` of type t collide in the exposition with existing
 * family f (a histogram "x" owns x_bucket, x_sum and x_count)? */
static int names_clash(const metrics_family *f, const char *name, metrics_type t)
{
    static const char *const sfx[] = {"_bucket", "_sum", "_count"};
    size_t i, fl = f->name_len, nl = strlen(name);

    for (i = 0; i < 3; i++) {
        size_t sl = strlen(sfx[i]);
        if (f->type == METRICS_HISTOGRAM && nl == fl + sl &&
            memcmp(name, f->name, fl) == 0 && strcmp(name + fl, sfx[i]) == 0)
            return 1;
        if (t == METRICS_HISTOGRAM && fl == nl + sl &&
            memcmp(f->name, name, nl) == 0 && strcmp(f->name + nl, sfx[i]) == 0)
            return 1;
    }
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Registry */

metrics_registry *metrics_registry_new(void)
{
    metrics_registry *r;

    pthread_once(&shard_once, shard_init);
    if ((r = calloc(1, sizeof *r)) == NULL) return NULL;
    if (pthread_mutex_init(&r->mu, NULL) != 0) {
        free(r);
        return NULL;
    }
    return r;
}

static void series_free(metrics_series *s)
{
    free(s->blob);
    free(s);
}

static void family_free(metrics_family *f)
{
    metrics_series *s, *next;
    size_t i;

    for (s = f->first; s; s = next) {
        next = s->next;
        series_free(s);
    }
    for (s = f->removed; s; s = next) {
        next = s->next;
        series_free(s);
    }
    for (i = 0; i < f->n_labels; i++) free(f->label_names[i]);
    pthread_mutex_destroy(&f->mu);
    free(f->tab);
    free(f->le_blob);
    free(f->head);
    free(f->name);
    free(f);
}

void metrics_registry_free(metrics_registry *r)
{
    metrics_family *f, *fn;
    metrics_override *o, *on;

    if (r == NULL) return;
    for (f = r->first; f; f = fn) {
        fn = f->next;
        family_free(f);
    }
    for (o = r->overrides; o; o = on) {
        on = o->next;
        free(o->name);
        free(o);
    }
    pthread_mutex_destroy(&r->mu);
    free(r);
}

static metrics_family *find_family(metrics_registry *r, const char *name)
{
    metrics_family *f;

    for (f = r->first; f; f = f->next)
        if (strcmp(f->name, name) == 0) return f;
    return NULL;
}

int metrics_set_buckets(metrics_registry *r, const char *family,
                        const double *bounds, size_t n)
{
    metrics_override *o;
    int rc = -1;

    if (r == NULL || !name_ok(family, 1) || !bounds_ok(bounds, n)) return -1;
    pthread_mutex_lock(&r->mu);
    if (find_family(r, family) != NULL) goto out; /* too late: series exist */
    for (o = r->overrides; o; o = o->next)
        if (strcmp(o->name, family) == 0) break;
    if (o == NULL) {
        if ((o = calloc(1, sizeof *o)) == NULL) goto out;
        if ((o->name = strdup(family)) == NULL) {
            free(o);
            goto out;
        }
        o->next = r->overrides;
        r->overrides = o;
    }
    memcpy(o->bounds, bounds, n * sizeof *bounds);
    o->n = n;
    rc = 0;
out:
    pthread_mutex_unlock(&r->mu);
    return rc;
}

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;

    if (err == NULL || errlen == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

int metrics_parse_buckets(const char *text, double *bounds, size_t max,
                          char *err, size_t errlen)
{
    const char *p = text;
    size_t n = 0;

    if (err && errlen) err[0] = '\0';
    if (text == NULL || bounds == NULL) {
        set_err(err, errlen, "no bucket list");
        return -1;
    }
    for (;;) {
        char *end;
        double v;

        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0' && n == 0) {
            set_err(err, errlen, "empty bucket list");
            return -1;
        }
        errno = 0;
        v = strtod(p, &end);
        if (end == p) {
            set_err(err, errlen, "not a number at \"%.20s\"", *p ? p : "(end)");
            return -1;
        }
        if (!isfinite(v) || errno == ERANGE) {
            set_err(err, errlen, "bound out of range at \"%.20s\"", p);
            return -1;
        }
        if (n >= max) {
            set_err(err, errlen, "too many bounds (max %zu)", max);
            return -1;
        }
        if (n > 0 && !(v > bounds[n - 1])) {
            set_err(err, errlen, "bounds not increasing: %g after %g", v,
                    bounds[n - 1]);
            return -1;
        }
        bounds[n++] = v;
        p = end;
        while (*p == ' ' || *p == '\t') p++;
        if (*p == '\0') return (int)n;
        if (*p != ',') {
            set_err(err, errlen, "expected ',' at \"%.20s\"", p);
            return -1;
        }
        p++;
    }
}

/* ------------------------------------------------------------------------ */
/* Families */

/* The largest ns with (double)ns / 1e9 <= b, for b >= 0: observe_ns()
 * compares integers against it, which puts every ns in the bucket the
 * division would (ns -> ns / 1e9 never decreases, so the ns that fit are
 * all those up to the limit). */
static uint64_t ns_limit(double b)
{
    uint64_t lo = 0, hi = UINT64_MAX; /* lo fits, hi does not */

    if ((double)hi / 1e9 <= b) return hi;
    while (hi - lo > 1) {
        uint64_t mid = lo + (hi - lo) / 2;
        if ((double)mid / 1e9 <= b) lo = mid;
        else hi = mid;
    }
    return lo;
}

/* Build the HELP/TYPE header and the le label texts. Returns 0 or -1. */
static int family_texts(metrics_family *f, const char *help)
{
    static const char *const tn[] = {"", "counter", "gauge", "histogram"};
    mbuf b = {0};
    size_t i, off[METRICS_MAX_BUCKETS + 1];

    mbuf_put(&b, "# HELP ", 7);
    mbuf_put(&b, f->name, f->name_len);
    mbuf_putc(&b, ' ');
    escape(&b, help ? help : "", 0);
    mbuf_put(&b, "\n# TYPE ", 8);
    mbuf_put(&b, f->name, f->name_len);
    mbuf_putc(&b, ' ');
    mbuf_put(&b, tn[f->type], strlen(tn[f->type]));
    mbuf_put(&b, "\n", 2); /* with the NUL */
    if (b.oom) goto fail;
    f->head = b.p;
    f->head_len = b.len - 1;

    if (f->type != METRICS_HISTOGRAM) return 0;
    memset(&b, 0, sizeof b);
    for (i = 0; i <= f->n_bounds; i++) {
        char t[32];
        size_t n = i < f->n_bounds ? fmt_shortest(t, f->bounds[i]) : 4;
        if (i == f->n_bounds) memcpy(t, "+Inf", 4);
        off[i] = b.len;
        mbuf_put(&b, "le=\"", 4);
        mbuf_put(&b, t, n);
        mbuf_put(&b, "\"", 2);
        f->le_len[i] = n + 5;
    }
    if (b.oom) goto fail;
    f->le_blob = b.p;
    for (i = 0; i <= f->n_bounds; i++) f->le[i] = b.p + off[i];
    return 0;
fail:
    free(b.p);
    return -1;
}

static metrics_family *family_get(metrics_registry *r, metrics_type type,
                                  const char *name, const char *help,
                                  size_t n_labels, const char *const *label_names,
                                  const double *bounds, size_t n_bounds)
{
    metrics_family *f, *g = NULL;
    metrics_override *o;
    size_t i, j;

    if (r == NULL || !name_ok(name, 1) || n_labels > METRICS_MAX_LABELS) return NULL;
    if (n_labels > 0 && label_names == NULL) return NULL;
    for (i = 0; i < n_labels; i++) {
        const char *l = label_names[i];
        if (!name_ok(l, 0) || strncmp(l, "__", 2) == 0) return NULL;
        if (type == METRICS_HISTOGRAM && strcmp(l, "le") == 0) return NULL;
        for (j = 0; j < i; j++)
            if (strcmp(l, label_names[j]) == 0) return NULL;
    }
    if (type == METRICS_HISTOGRAM && n_bounds > 0 && !bounds_ok(bounds, n_bounds))
        return NULL;

    pthread_mutex_lock(&r->mu);
    if ((f = find_family(r, name)) != NULL) {
        /* Identical re-registration (help and bounds aside) shares the family. */
        if (f->type != type || f->n_labels != n_labels) f = NULL;
        for (i = 0; f && i < n_labels; i++)
            if (strcmp(f->label_names[i], label_names[i]) != 0) f = NULL;
        pthread_mutex_unlock(&r->mu);
        return f;
    }
    for (g = r->first; g; g = g->next)
        if (names_clash(g, name, type)) goto fail;

    f = aligned_alloc(METRICS_LINE, sizeof *f);
    if (f == NULL) goto fail;
    memset(f, 0, sizeof *f);
    f->reg = r;
    f->type = type;
    f->n_labels = n_labels;
    if (pthread_mutex_init(&f->mu, NULL) != 0) {
        free(f);
        f = NULL;
        goto fail;
    }
    if ((f->name = strdup(name)) == NULL) goto fail;
    f->name_len = strlen(name);
    for (i = 0; i < n_labels; i++)
        if ((f->label_names[i] = strdup(label_names[i])) == NULL) goto fail;
    if (type == METRICS_HISTOGRAM) {
        for (o = r->overrides; o; o = o->next)
            if (strcmp(o->name, name) == 0) break;
        if (o) {
            bounds = o->bounds;
            n_bounds = o->n;
        } else if (n_bounds == 0) {
            bounds = metrics_default_bounds;
            n_bounds = sizeof metrics_default_bounds / sizeof *metrics_default_bounds;
        }
        memcpy(f->bounds, bounds, n_bounds * sizeof *bounds);
        f->n_bounds = n_bounds;
        for (i = 0; i < n_bounds; i++) {
            if (bounds[i] < 0) f->ns_first = i + 1;
            else f->ns_le[i] = ns_limit(bounds[i]);
        }
    }
    if (family_texts(f, help) != 0) goto fail;
    f->tab_cap = 16;
    if ((f->tab = calloc(f->tab_cap, sizeof *f->tab)) == NULL) goto fail;

    if (r->last) r->last->next = f;
    else r->first = f;
    r->last = f;
    pthread_mutex_unlock(&r->mu);
    return f;
fail:
    pthread_mutex_unlock(&r->mu);
    if (f) family_free(f);
    return NULL;
}

metrics_family *metrics_counter_family(metrics_registry *r, const char *name,
                                       const char *help, size_t n_labels,
                                       const char *const *label_names)
{
    return family_get(r, METRICS_COUNTER, name, help, n_labels, label_names, NULL, 0);
}

metrics_family *metrics_gauge_family(metrics_registry *r, const char *name,
                                     const char *help, size_t n_labels,
                                     const char *const *label_names)
{
    return family_get(r, METRICS_GAUGE, name, help, n_labels, label_names, NULL, 0);
}

metrics_family *metrics_histogram_family(metrics_registry *r, const char *name,
                                         const char *help, size_t n_labels,
                                         const char *const *label_names,
                                         const double *bounds, size_t n_bounds)
{
    return family_get(r, METRICS_HISTOGRAM, name, help, n_labels, label_names,
                      bounds, n_bounds);
}

/* ------------------------------------------------------------------------ */
/* Series */

static uint64_t values_hash(const metrics_family *f, const char *const *v)
{
    uint64_t h = 1469598103934665603u; /* FNV-1a, terminators included */
    size_t i;

    for (i = 0; i < f->n_labels; i++) {
        const unsigned char *p = (const unsigned char *)v[i];
        do {
            h ^= *p;
            h *= 1099511628211u;
        } while (*p++);
    }
    return h;
}

static int values_equal(const metrics_family *f, const metrics_series *s,
                        const char *const *v)
{
    size_t i;

    for (i = 0; i < f->n_labels; i++)
        if (strcmp(s->values[i], v[i]) != 0) return 0;
    return 1;
}

/* Caller holds f->mu. */
static metrics_series *series_find(metrics_family *f, const char *const *v, uint64_t h)
{
    metrics_series *s;

    for (s = f->tab[h & (f->tab_cap - 1)]; s; s = s->hnext)
        if (s->hash == h && values_equal(f, s, v)) return s;
    return NULL;
}

/* Caller holds f->mu. Doubling failure is harmless: chains just get longer. */
static void tab_grow(metrics_family *f)
{
    size_t cap = f->tab_cap * 2, i;
    metrics_series **t = calloc(cap, sizeof *t), *s, *next;

    if (t == NULL) return;
    for (i = 0; i < f->tab_cap; i++) {
        for (s = f->tab[i]; s; s = next) {
            next = s->hnext;
            s->hnext = t[s->hash & (cap - 1)];
            t[s->hash & (cap - 1)] = s;
        }
    }
    free(f->tab);
    f->tab = t;
    f->tab_cap = cap;
}

static metrics_series *series_new(metrics_family *f, const char *const *v, uint64_t h)
{
    size_t words = f->type == METRICS_HISTOGRAM ? f->n_bounds + 2
                   : f->type == METRICS_GAUGE   ? 2
                                                : 1;
    size_t stride = (words * sizeof(uint64_t) + METRICS_LINE - 1) / METRICS_LINE * METRICS_LINE;
    size_t size = sizeof(metrics_series) + shard_count * stride;
    size_t i, off[METRICS_MAX_LABELS], lbl_off;
    metrics_series *s;
    mbuf b = {0};

    if ((s = aligned_alloc(METRICS_LINE, size)) == NULL) return NULL;
    /* All-zero bytes are zero atomics, +0.0 doubles and an even gseq. */
    memset(s, 0, size);
    for (i = 0; i < f->n_labels; i++) {
        off[i] = b.len;
        mbuf_put(&b, v[i], strlen(v[i]) + 1);
    }
    lbl_off = b.len;
    for (i = 0; i < f->n_labels; i++) {
        if (i > 0) mbuf_putc(&b, ',');
        mbuf_put(&b, f->label_names[i], strlen(f->label_names[i]));
        mbuf_put(&b, "=\"", 2);
        escape(&b, v[i], 1);
        mbuf_putc(&b, '"');
    }
    s->lbl_len = b.len - lbl_off;
    mbuf_putc(&b, '\0');
    if (b.oom) {
        free(b.p);
        free(s);
        return NULL;
    }
    s->blob = b.p;
    for (i = 0; i < f->n_labels; i++) s->values[i] = b.p + off[i];
    s->lbl = b.p + lbl_off;
    s->hash = h;
    s->fam = f;
    s->mask = shard_count - 1;
    s->stride = (uint32_t)stride;
    s->linked = 1;
    atomic_init(&s->refs, 1); /* the family's own reference */
    return s;
}

metrics_series *metrics_series_get(metrics_family *f, const char *const *label_values)
{
    metrics_series *s;
    uint64_t h;
    size_t i;

    if (f == NULL || (f->n_labels > 0 && label_values == NULL)) return NULL;
    for (i = 0; i < f->n_labels; i++)
        if (label_values[i] == NULL) return NULL;
    h = values_hash(f, label_values);
    pthread_mutex_lock(&f->mu);
    if ((s = series_find(f, label_values, h)) == NULL) {
        if ((s = series_new(f, label_values, h)) == NULL) goto out;
        s->prev = f->last;
        if (f->last) f->last->next = s;
        else f->first = s;
        f->last = s;
        s->hnext = f->tab[h & (f->tab_cap - 1)];
        f->tab[h & (f->tab_cap - 1)] = s;
        if (++f->n_live > f->tab_cap / 4 * 3) tab_grow(f);
    }
    atomic_fetch_add_explicit(&s->refs, 1, memory_order_relaxed);
out:
    pthread_mutex_unlock(&f->mu);
    return s;
}

/* Caller holds f->mu. Takes s out of the hash and the live list, then drops
 * the family's reference; returns s if that was the last one (the caller
 * frees it after unlocking), else parks s on the removed list. */
static metrics_series *series_unlink(metrics_family *f, metrics_series *s)
{
    metrics_series **pp = &f->tab[s->hash & (f->tab_cap - 1)];

    while (*pp != s) pp = &(*pp)->hnext;
    *pp = s->hnext;
    if (s->prev) s->prev->next = s->next;
    else f->first = s->next;
    if (s->next) s->next->prev = s->prev;
    else f->last = s->prev;
    f->n_live--;
    s->linked = 0;
    s->hnext = NULL;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) == 1) return s;
    s->prev = NULL;
    s->next = f->removed;
    if (f->removed) f->removed->prev = s;
    f->removed = s;
    return NULL;
}

void metrics_series_release(metrics_series *s)
{
    metrics_family *f;

    if (s == NULL) return;
    if (atomic_fetch_sub_explicit(&s->refs, 1, memory_order_acq_rel) != 1) return;
    /* Last reference: the family's is gone, so s sits on the removed list
     * and nothing else can reach it. */
    f = s->fam;
    pthread_mutex_lock(&f->mu);
    assert(!s->linked);
    if (s->prev) s->prev->next = s->next;
    else f->removed = s->next;
    if (s->next) s->next->prev = s->prev;
    pthread_mutex_unlock(&f->mu);
    series_free(s);
}

int metrics_series_remove(metrics_family *f, const char *const *label_values)
{
    metrics_series *s, *dead = NULL;
    uint64_t h;
    size_t i;

    if (f == NULL || (f->n_labels > 0 && label_values == NULL)) return 0;
    for (i = 0; i < f->n_labels; i++)
        if (label_values[i] == NULL) return 0;
    h = values_hash(f, label_values);
    pthread_mutex_lock(&f->mu);
    s = series_find(f, label_values, h);
    if (s) dead = series_unlink(f, s);
    pthread_mutex_unlock(&f->mu);
    if (dead) series_free(dead);
    return s != NULL;
}

size_t metrics_family_remove_matching(metrics_family *f, const char *label,
                                      const char *value)
{
    metrics_series *s, *next, *dead = NULL, *d;
    size_t i, n = 0;

    if (f == NULL || label == NULL || value == NULL) return 0;
    for (i = 0; i < f->n_labels; i++)
        if (strcmp(f->label_names[i], label) == 0) break;
    if (i == f->n_labels) return 0;
    pthread_mutex_lock(&f->mu);
    for (s = f->first; s; s = next) {
        next = s->next;
        if (strcmp(s->values[i], value) != 0) continue;
        n++;
        if ((d = series_unlink(f, s)) != NULL) {
            d->next = dead; /* freed after unlocking */
            dead = d;
        }
    }
    pthread_mutex_unlock(&f->mu);
    for (; dead; dead = next) {
        next = dead->next;
        series_free(dead);
    }
    return n;
}

/* ------------------------------------------------------------------------ */
/* Updates: relaxed atomics only; a NULL handle (failed get) is ignored. */

static inline uint64_t d2u(double d)
{
    uint64_t u;
    memcpy(&u, &d, sizeof u);
    return u;
}

static inline double u2d(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

void metrics_counter_add(metrics_series *s, uint64_t n)
{
    if (s == NULL) return;
    assert(s->fam->type == METRICS_COUNTER);
    atomic_fetch_add_explicit(&shard_at(s, shard_here())[0], n, memory_order_relaxed);
}

/* Gauge set(): see "Gauges" at the top. Setters exclude each other through
 * gseq (they are rare; a waiting one yields). Shards found at zero are left
 * alone, so a gauge that is only ever set() writes no shard line. */
void metrics_gauge_set(metrics_series *s, double v)
{
    uint64_t q;
    unsigned i;

    if (s == NULL) return;
    assert(s->fam->type == METRICS_GAUGE);
    q = atomic_load_explicit(&s->gseq, memory_order_relaxed);
    for (;;) {
        if (q & 1) {
            sched_yield();
            q = atomic_load_explicit(&s->gseq, memory_order_relaxed);
        } else if (atomic_compare_exchange_weak_explicit(&s->gseq, &q, q + 1,
                                                         memory_order_relaxed,
                                                         memory_order_relaxed)) {
            break;
        }
    }
    atomic_thread_fence(memory_order_release);
    for (i = 0; i <= s->mask; i++) {
        _Atomic uint64_t *w = shard_at(s, i);
        if (atomic_load_explicit(&w[0], memory_order_relaxed) != 0)
            atomic_exchange_explicit(&w[0], 0, memory_order_relaxed);
        if (atomic_load_explicit(&w[1], memory_order_relaxed) != 0)
            atomic_exchange_explicit(&w[1], 0, memory_order_relaxed);
    }
    atomic_store_explicit(&s->gbase, d2u(v), memory_order_relaxed);
    atomic_store_explicit(&s->gseq, q + 2, memory_order_release);
}

void metrics_gauge_add(metrics_series *s, double delta)
{
    _Atomic uint64_t *w;
    uint64_t old;

    if (s == NULL) return;
    assert(s->fam->type == METRICS_GAUGE);
    w = shard_at(s, shard_here());
    /* Integral deltas (the common +1/-1 of "in flight" gauges) sum exactly
     * and cost one add; |delta| <= 2^53 keeps the conversion exact. */
    if (delta >= -9007199254740992.0 && delta <= 9007199254740992.0 &&
        delta == (double)(int64_t)delta) {
        atomic_fetch_add_explicit(&w[0], (uint64_t)(int64_t)delta, memory_order_relaxed);
        return;
    }
    old = atomic_load_explicit(&w[1], memory_order_relaxed);
    while (!atomic_compare_exchange_weak_explicit(&w[1], &old, d2u(u2d(old) + delta),
                                                  memory_order_relaxed,
                                                  memory_order_relaxed))
        ;
}

/* The gauge's value: the last set() plus every add() since. Retries while a
 * set() runs (or ran between the two reads of gseq). */
static double gauge_read(const metrics_series *s)
{
    metrics_series *m = (metrics_series *)s;

    for (;;) {
        uint64_t q = atomic_load_explicit(&m->gseq, memory_order_acquire), isum = 0;
        double base, fsum = 0;
        unsigned i;

        if (q & 1) {
            sched_yield();
            continue;
        }
        base = u2d(atomic_load_explicit(&m->gbase, memory_order_relaxed));
        for (i = 0; i <= m->mask; i++) {
            _Atomic uint64_t *w = shard_at(m, i);
            isum += atomic_load_explicit(&w[0], memory_order_relaxed);
            fsum += u2d(atomic_load_explicit(&w[1], memory_order_relaxed));
        }
        atomic_thread_fence(memory_order_acquire);
        if (atomic_load_explicit(&m->gseq, memory_order_relaxed) != q) continue;
        /* Untouched deltas leave the set() value exactly as given (-0.0 too). */
        if (isum != 0) base += (double)(int64_t)isum;
        if (fsum != 0) base += fsum;
        return base;
    }
}

/* Index of the first bound >= x (le is less-or-equal), n_bounds for +Inf. */
static inline size_t bucket_of(const metrics_family *f, double x)
{
    size_t lo = 0, hi = f->n_bounds;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (x <= f->bounds[mid]) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

/* bucket_of(f, (double)ns / 1e9) without the division. */
static inline size_t bucket_of_ns(const metrics_family *f, uint64_t ns)
{
    size_t lo = f->ns_first, hi = f->n_bounds;

    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if (ns <= f->ns_le[mid]) hi = mid;
        else lo = mid + 1;
    }
    return lo;
}

void metrics_histogram_observe_ns(metrics_series *s, uint64_t ns)
{
    _Atomic uint64_t *w;

    if (s == NULL) return;
    assert(s->fam->type == METRICS_HISTOGRAM);
    w = shard_at(s, shard_here());
    /* ns / 1e9 rounds exactly like parsing the decimal bound, so an
     * observation equal to a bound lands in that bound's bucket. */
    atomic_fetch_add_explicit(&w[1 + bucket_of_ns(s->fam, ns)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w[0], ns, memory_order_relaxed);
}

void metrics_histogram_observe(metrics_series *s, double seconds)
{
    _Atomic uint64_t *w;
    double ns;

    if (s == NULL) return;
    assert(s->fam->type == METRICS_HISTOGRAM);
    if (!(seconds > 0)) seconds = 0; /* negative and NaN */
    ns = seconds * 1e9 + 0.5;
    w = shard_at(s, shard_here());
    atomic_fetch_add_explicit(&w[1 + bucket_of(s->fam, seconds)], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&w[0], ns >= 18446744073709551615.0 ? UINT64_MAX : (uint64_t)ns,
                              memory_order_relaxed);
}

uint64_t metrics_counter_value(const metrics_series *s)
{
    if (s == NULL) return 0;
    return shard_sum(s, 0);
}

double metrics_gauge_value(const metrics_series *s)
{
    if (s == NULL) return 0;
    return gauge_read(s);
}

uint64_t metrics_histogram_count(const metrics_series *s)
{
    uint64_t n = 0;
    size_t i;

    if (s == NULL) return 0;
    for (i = 0; i <= s->fam->n_bounds; i++) n += shard_sum(s, 1 + i);
    return n;
}

double metrics_histogram_sum(const metrics_series *s)
{
    if (s == NULL) return 0;
    return (double)shard_sum(s, 0) / 1e9;
}

/* ------------------------------------------------------------------------ */
/* Exposition */

/* name + suffix + {labels[,extra]} */
static void put_name_labels(mbuf *b, const metrics_family *f, const char *sfx,
                            size_t sfx_len, const metrics_series *s,
                            const char *extra, size_t extra_len)
{
    mbuf_put(b, f->name, f->name_len);
    mbuf_put(b, sfx, sfx_len);
    if (s->lbl_len == 0 && extra_len == 0) return;
    mbuf_putc(b, '{');
    mbuf_put(b, s->lbl, s->lbl_len);
    if (extra_len) {
        if (s->lbl_len) mbuf_putc(b, ',');
        mbuf_put(b, extra, extra_len);
    }
    mbuf_putc(b, '}');
}

static void render_series(mbuf *b, const metrics_family *f, metrics_series *s)
{
    char num[40];
    uint64_t cum = 0;
    size_t i;

    switch (f->type) {
    case METRICS_COUNTER:
        put_name_labels(b, f, "", 0, s, NULL, 0);
        mbuf_putc(b, ' ');
        mbuf_u64(b, shard_sum(s, 0));
        mbuf_putc(b, '\n');
        break;
    case METRICS_GAUGE:
        put_name_labels(b, f, "", 0, s, NULL, 0);
        mbuf_putc(b, ' ');
        mbuf_put(b, num, fmt_double(num, gauge_read(s)));
        mbuf_putc(b, '\n');
        break;
    case METRICS_HISTOGRAM:
        /* The count is the sum of the buckets just read, so _count always
         * equals the +Inf bucket even while other threads observe. */
        for (i = 0; i <= f->n_bounds; i++) {
            cum += shard_sum(s, 1 + i);
            put_name_labels(b, f, "_bucket", 7, s, f->le[i], f->le_len[i]);
            mbuf_putc(b, ' ');
            mbuf_u64(b, cum);
            mbuf_putc(b, '\n');
        }
        put_name_labels(b, f, "_sum", 4, s, NULL, 0);
        mbuf_putc(b, ' ');
        mbuf_put(b, num,
                 fmt_ns_seconds(num, shard_sum(s, 0)));
        mbuf_putc(b, '\n');
        put_name_labels(b, f, "_count", 6, s, NULL, 0);
        mbuf_putc(b, ' ');
        mbuf_u64(b, cum);
        mbuf_putc(b, '\n');
        break;
    }
}

int metrics_render(metrics_registry *r, char **out, size_t *len)
{
    mbuf b = {0};
    metrics_family *f;
    metrics_series *s;

    if (r == NULL || out == NULL) return -1;
    pthread_mutex_lock(&r->mu);
    /* Start at the previous size so a steady-state scrape grows at most once. */
    mbuf_grow(&b, r->render_hint + r->render_hint / 8 + 1);
    for (f = r->first; f; f = f->next) {
        mbuf_put(&b, f->head, f->head_len);
        pthread_mutex_lock(&f->mu);
        for (s = f->first; s; s = s->next) render_series(&b, f, s);
        pthread_mutex_unlock(&f->mu);
    }
    mbuf_putc(&b, '\0');
    if (!b.oom) r->render_hint = b.len;
    pthread_mutex_unlock(&r->mu);
    if (b.oom) {
        free(b.p);
        return -1;
    }
    *out = b.p;
    if (len) *len = b.len - 1;
    return 0;
}
