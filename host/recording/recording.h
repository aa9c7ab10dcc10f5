/*
 * The recording upload queue: finished recordings leave through the
 * recording-sink plugin, and none is ever lost on the way.
 *
 * A job is one session's recording: <id>.wav (stereo, user left, bot right)
 * and <id>.json (the sidecar) in the spool folder. recorder.c writes them
 * there (the sidecar first, the WAV last: a WAV present means the job is
 * complete) and calls recording_submit(). The job then waits in a bounded
 * queue ([recording] queue_size) served by [recording] workers threads,
 * which upload the WAV and then the sidecar through the call gate
 * (voxray_plugin_calls_total{kind="sink",op="upload"}), retrying retryable
 * failures up to max_retries times with exponential backoff and jitter.
 * Only after both uploads succeeded are the local files deleted.
 *
 * Dead letters. A job whose retries are exhausted, whose failure is not
 * retryable (credentials refused), that finds the queue full, or that is
 * still waiting when shutdown_upload_timeout runs out is moved (never
 * copied half) into dead_letter_dir, with <id>.error saying why. Dead
 * letters are re-submitted at start, every replay_interval, and by
 * `voxray --replay-recordings`; a job leaves the dead-letter folder only
 * after its upload succeeded. At start the spool is recovered too: complete
 * jobs a crash left there are queued, captures a crash interrupted are
 * salvaged (recorder_salvage) into a recording marked incomplete.
 *
 * Two processes (the daemon and --replay-recordings) may work on one
 * dead-letter folder: a job is locked (flock on its WAV) while it uploads.
 *
 * Metrics: recording_jobs_enqueued_total, recording_jobs_success_total,
 * recording_jobs_failed_total (jobs dead-lettered after upload failures),
 * recording_queue_depth (jobs waiting, backoffs included), and
 * voxray_recording_dead_letter_total{reason}, voxray_recording_dead_letter_jobs,
 * voxray_recording_upload_retries_total.
 */
#ifndef VOXRAY_RECORDING_H
#define VOXRAY_RECORDING_H

#include <stddef.h>

#include "app.h"

typedef struct metrics_registry metrics_registry;

/* Register the families (always: they read 0 with recording disabled). */
int recording_metrics_init(metrics_registry *reg);

/* Create the folders, recover the spool, queue the dead letters and start
 * the workers. A no-op returning 0 when recording is disabled; -1 with a
 * reason in err when a folder cannot be created. */
int recording_start(app *a, char *err, size_t errlen);

/* A finished job: <spool>/<id>.wav and <id>.json exist. The queue takes it,
 * or it is dead-lettered (queue full, shutting down). Any thread. */
void recording_submit(const char *id);

/* Captures in progress (recorder.c): +1 when one opens, -1 once its job was
 * submitted. Shutdown waits for them. */
void recording_live(int delta);
/* 1 when recording is on (recording_start ran with enabled = true). */
int recording_enabled(void);
/* The spool folder (valid while recording is on). */
const char *recording_spool_dir(void);

/* Shutdown, after the sessions were closed: wait up to live_ms for the
 * captures still finishing, give the queue until upload_ms to empty, move
 * what is left to the dead-letter folder and stop the workers. Returns 0,
 * or -1 when an upload was still running in the sink at the deadline (its
 * job was dead-lettered; the caller must not unload the plugin). */
int recording_stop(long long live_ms, long long upload_ms);

/* For /v1/health: jobs waiting in the queue and in the dead-letter folder. */
void recording_counts(int *depth, int *dead_letters);

/* voxray --replay-recordings: upload every dead-lettered job now (with the
 * configured retries), one line per job on stdout. recording_start must not
 * have run. Returns the number of jobs still dead-lettered afterwards, or
 * -1 if the folder cannot be read. */
int recording_replay(app *a);

#endif
