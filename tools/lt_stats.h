/*
 * Figures kept by voxray-loadtest: every latency sample of a stage (exact
 * percentiles, no histogram), and error counters by kind.
 */
#ifndef VOXRAY_TOOLS_LT_STATS_H
#define VOXRAY_TOOLS_LT_STATS_H

#include <stddef.h>
#include <stdint.h>

/* Every sample of one stage, in microseconds. v[0..sorted) is in order;
 * samples added later wait past it until lt_samples_sort(). */
typedef struct lt_samples {
    uint32_t *v;
    size_t n, cap, sorted;
    uint64_t sum;       /* microseconds, for the mean */
} lt_samples;

/* Append one sample (negative values are stored as 0, values past UINT32_MAX
 * microseconds, 71 minutes, as UINT32_MAX). Returns 0, or -1 when out of
 * memory (the sample is lost, nothing else changes). */
int lt_samples_add(lt_samples *s, int64_t us);

/* Put every sample in order: the unsorted tail is sorted and merged, so
 * calling this once a second costs O(new log new + n), not a full sort.
 * Returns 0, or -1 when out of memory for the merge (order unchanged). */
int lt_samples_sort(lt_samples *s);

/* Nearest-rank percentile (p in 0..100) in microseconds of sorted samples;
 * 0 when there are none. Call lt_samples_sort() first. */
uint32_t lt_samples_pct(const lt_samples *s, double p);

/* Mean in microseconds; 0 when there are none. */
double lt_samples_mean(const lt_samples *s);

void lt_samples_free(lt_samples *s);

/* Error counters by kind ("connect_failed", "error:invalid_api_key", ...).
 * At most LT_MAX_KINDS distinct kinds; later new kinds count as "other". */
#define LT_MAX_KINDS 64
#define LT_KIND_LEN 64

typedef struct lt_errors {
    struct {
        char kind[LT_KIND_LEN];
        uint64_t count;
    } e[LT_MAX_KINDS];
    int n;
    uint64_t total;
} lt_errors;

/* Count one error of kind (truncated to LT_KIND_LEN - 1 bytes). */
void lt_errors_add(lt_errors *e, const char *kind);

#endif
