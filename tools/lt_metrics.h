/*
 * The server's own latency histograms, read from its Prometheus /metrics
 * page (text format 0.0.4) with libcurl, so that a load test can set what
 * the client measured beside what the server says it spent.
 */
#ifndef VOXRAY_TOOLS_LT_METRICS_H
#define VOXRAY_TOOLS_LT_METRICS_H

#include <stddef.h>

/* The histogram families read, in this order. */
enum {
    LT_M_STT_FIRST,     /* stt_time_to_first_token_seconds */
    LT_M_STT,           /* stt_transcription_latency_seconds */
    LT_M_LLM,           /* llm_time_to_first_token_seconds */
    LT_M_TTS,           /* tts_time_to_first_audio_chunk_seconds */
    LT_M_TURN,          /* voxray_turn_latency_seconds */
    LT_M_COUNT
};

extern const char *const lt_metric_names[LT_M_COUNT];

/* The _sum and _count of every series of those families at one moment. */
typedef struct lt_metrics lt_metrics;

/* GET url (5 s timeout) and parse it; insecure: do not verify an https
 * certificate. Returns a snapshot to release with lt_metrics_free(), or
 * NULL with a reason in err (unreachable, not 200, out of memory). */
lt_metrics *lt_metrics_fetch(const char *url, int insecure, char *err, size_t errlen);

/* What happened between two snapshots of family f: observations and their
 * mean in seconds. Series are matched by their labels; a series that only
 * the end has counts whole, one that vanished (a session's series removed
 * after [metrics] series_ttl) counts nothing. Returns the observation count
 * (0: *mean untouched). */
double lt_metrics_delta(const lt_metrics *start, const lt_metrics *end, int f, double *mean);

void lt_metrics_free(lt_metrics *m);

#endif
