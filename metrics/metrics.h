/*
 * voxray metrics: counters, gauges and histograms with label sets, rendered in
 * the Prometheus text exposition format 0.0.4.
 *
 * Model
 *   registry -> families (name, help, type, label names[, buckets])
 *            -> series (one per distinct tuple of label values)
 *
 * Hot path
 *   Series handles are resolved once with metrics_series_get() (takes the
 *   family lock) and cached by the caller. Updating through a handle is
 *   lock-free: relaxed atomic adds on 64-bit integers (counters, per-bucket
 *   counts, histogram sums in integer nanoseconds) in the shard of the CPU
 *   the caller runs on. A series has a few shards (the CPU count rounded up
 *   to a power of two, at most 8), each on cache lines of its own, summed
 *   when read or rendered; threads updating one series at the same time on
 *   different CPUs therefore do not bounce a line between them. Gauges shard
 *   add() the same way; set() is the exception (not sharded, and it waits
 *   for another set() of the same series: see metrics_gauge_set()).
 *
 * Lifetime
 *   A handle holds a reference. metrics_series_remove() unlinks a series from
 *   its family (it disappears from the exposition at once) but the memory
 *   lives until the last handle is released with metrics_series_release(), so
 *   a removal can never race with an update on another thread.
 *
 * Thread safety: every function is safe to call from any thread, except
 *   metrics_registry_free(), which must be the last call.
 */
#ifndef VOXRAY_METRICS_H
#define VOXRAY_METRICS_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct metrics_registry metrics_registry;
typedef struct metrics_family metrics_family;
typedef struct metrics_series metrics_series;

typedef enum metrics_type {
    METRICS_COUNTER = 1,
    METRICS_GAUGE,
    METRICS_HISTOGRAM
} metrics_type;

#define METRICS_MAX_LABELS 8
#define METRICS_MAX_BUCKETS 64

/* New empty registry; NULL on allocation failure. */
metrics_registry *metrics_registry_new(void);
/* Free the registry, its families and every series (handles become invalid). */
void metrics_registry_free(metrics_registry *r);

/* Override the buckets of a histogram family by name. Must be called before
 * the family is created (typically from the [metrics] config section);
 * afterwards returns -1. bounds must be strictly increasing, finite and
 * 1 <= n <= METRICS_MAX_BUCKETS (the +Inf bucket is implicit). A second call
 * for the same name before creation replaces the first. Returns 0 or -1
 * (bad name, bad bounds, too late, allocation failure). */
int metrics_set_buckets(metrics_registry *r, const char *family,
                        const double *bounds, size_t n);

/* Parse "0.005, 0.01, 0.5" into bounds[]; returns the count, or -1 with a
 * message in err (not increasing, not a number, not finite, too many for
 * max, empty list). Spaces and tabs around items are ignored. err may be
 * NULL. Numbers are read with strtod(), so the C locale's '.' is expected. */
int metrics_parse_buckets(const char *text, double *bounds, size_t max,
                          char *err, size_t errlen);

/* Create (or return the existing identical) family.
 *   name: [a-zA-Z_:][a-zA-Z0-9_:]*, label names [a-zA-Z_][a-zA-Z0-9_]* and
 *   not starting with "__"; "le" is reserved for histograms.
 *   Histograms use bounds (n_bounds > 0) unless metrics_set_buckets() set an
 *   override for this name; bounds NULL/0 means the default buckets
 *   {.005,.01,.025,.05,.1,.25,.5,1,2.5,5,10}.
 * Registering a name again with the same type and label names (in the same
 * order) returns the existing family; the later help text and bounds are
 * ignored. Names are used as given: counters should already end in _total.
 * Returns NULL on a bad name, bad label name, duplicate label name, too many
 * labels, bad bounds (not increasing, not finite, too many), allocation
 * failure, when a family of that name exists with a different type or label
 * names, or when the name collides with a histogram's derived series
 * (x_bucket, x_sum, x_count of histogram x). */
metrics_family *metrics_counter_family(metrics_registry *r, const char *name,
                                       const char *help, size_t n_labels,
                                       const char *const *label_names);
metrics_family *metrics_gauge_family(metrics_registry *r, const char *name,
                                     const char *help, size_t n_labels,
                                     const char *const *label_names);
metrics_family *metrics_histogram_family(metrics_registry *r, const char *name,
                                         const char *help, size_t n_labels,
                                         const char *const *label_names,
                                         const double *bounds, size_t n_bounds);

/* Find or create the series with these label values (n_labels of them, in
 * the family's label order; any UTF-8, escaped at render time, invalid
 * UTF-8 bytes rendered as U+FFFD) and return a new reference to it.
 * label_values may be NULL when the family has no labels. NULL on
 * allocation failure or a NULL value. */
metrics_series *metrics_series_get(metrics_family *f, const char *const *label_values);
/* Drop a reference obtained from metrics_series_get(). NULL is a no-op. */
void metrics_series_release(metrics_series *s);
/* Remove the series with these label values from the exposition. Existing
 * handles stay valid (updates go nowhere visible) until released.
 * Returns 1 if a series was removed, 0 if none matched. */
int metrics_series_remove(metrics_family *f, const char *const *label_values);
/* Remove every series whose label `label` equals `value` (e.g. all series of
 * one session_id). Returns the number removed. */
size_t metrics_family_remove_matching(metrics_family *f, const char *label,
                                      const char *value);

/* Updates. All but metrics_gauge_set() are lock-free. They take a handle
 * from metrics_series_get() of a family of the matching type (checked by
 * assert); a NULL handle (a failed get) is ignored, so callers need not
 * check. */

/* Counter updates. */
void metrics_counter_add(metrics_series *s, uint64_t n);
static inline void metrics_counter_inc(metrics_series *s) { metrics_counter_add(s, 1); }

/* Gauge updates. The value is the last set() plus every add() since.
 * add() is as cheap as a counter add (integral deltas of at most 2^53 are
 * summed exactly as integers; others as doubles). set() zeroes the shards
 * and stores v inside a sequence lock: it costs a few atomics on lines other
 * threads use, and concurrent set()s on one series wait for each other (a
 * reader never sees half a set()). An add() racing with a set() counts
 * either before it (dropped) or after it (kept). Integral deltas wrap
 * beyond +-2^63 in total. */
void metrics_gauge_set(metrics_series *s, double v);
void metrics_gauge_add(metrics_series *s, double delta);

/* Histogram observations. Values are seconds; stored in integer nanoseconds
 * (negative and NaN values are clamped to 0). A value equal to a bound
 * counts in that bound's bucket (le is less-or-equal). */
void metrics_histogram_observe_ns(metrics_series *s, uint64_t ns);
void metrics_histogram_observe(metrics_series *s, double seconds);

/* Read back (tests, /v1/health). */
uint64_t metrics_counter_value(const metrics_series *s);
double metrics_gauge_value(const metrics_series *s);
uint64_t metrics_histogram_count(const metrics_series *s);
double metrics_histogram_sum(const metrics_series *s);

/* Render the whole registry in the text format 0.0.4: families in
 * registration order, each with # HELP and # TYPE, series in creation order,
 * label values escaped (\\, \", \n), histogram buckets cumulative with
 * le="+Inf", _sum (exact decimal seconds) and _count (always equal to the
 * +Inf bucket). le values print as the Prometheus Go client prints them
 * (0.005, 1, 2.5, 1e+06); gauges print integral values below 1e15 as plain
 * integers (3, -2), others as the shortest text that reads back exactly
 * (0.1, 1e-07, 2.5e+20), and +Inf, -Inf, NaN. A family with no series
 * renders only its HELP and TYPE lines. On success *out is a malloc'd
 * NUL-terminated buffer the caller frees, *len its length (len may be NULL);
 * returns 0, or -1 on allocation failure. */
int metrics_render(metrics_registry *r, char **out, size_t *len);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#ifdef __cplusplus
}
#endif
#endif /* VOXRAY_METRICS_H */
