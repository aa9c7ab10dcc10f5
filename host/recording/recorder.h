/*
 * Capture of one session's recording: both directions of the call as they
 * were heard, on one clock, written to local disk as the call goes, and at
 * the end a stereo WAV (user left, bot right, [recording] audio_rate) plus a
 * JSON sidecar (session id, start and end, instance, providers per stage,
 * every turn's transcript, reply and timings), handed to the upload queue.
 *
 * The clock. Position p of the recording is p / audio_rate seconds after
 * the session started (CLOCK_MONOTONIC). A chunk of user audio received at
 * time t is placed to end at t (it was spoken just before), or right after
 * the previous chunk when the client sends faster than real time; a gap in
 * the stream stays silent. Bot audio is placed where the client starts
 * playing it: at its release time, or right after the previous chunk. A
 * barge-in cuts the bot channel at the moment playback stopped (audio sent
 * ahead of real time but never played is removed), and
 * conversation.item.truncate cuts it where the client says playback ended.
 *
 * Memory and blocking. All calls come from the session's strand and never
 * touch the disk: audio is copied into small blocks that a writer strand of
 * the recorder appends to two raw mono files in <spool>/live/<id>/ (gaps are
 * holes in sparse files). At most [recording] max_backlog bytes may wait for
 * the disk; beyond that, and after any write error (a full disk), audio is
 * dropped, counted in voxray_recording_capture_errors_total{reason} and the
 * sidecar says how much is missing ("complete": false). The session never
 * waits and never fails because of its recording.
 *
 * Atomicity. The WAV and the sidecar are built in temporary files, fsynced
 * and renamed into the spool (the sidecar first, the WAV last). A crash
 * before that leaves the raw files, which recorder_salvage() turns into a
 * recording marked incomplete at the next start.
 */
#ifndef VOXRAY_RECORDER_H
#define VOXRAY_RECORDER_H

#include <stddef.h>
#include <stdint.h>

#include "settings.h"

typedef struct recorder recorder;
typedef struct metrics_registry metrics_registry;

int recorder_metrics_init(metrics_registry *reg);

/* Start recording session `id` that started at start_ns (CLOCK_MONOTONIC) /
 * start_unix_ms. NULL when recording is off or the session is not sampled
 * (1 in [recording] sample_rate), or on OOM. Never touches the disk. */
recorder *recorder_open(const settings *s, const char *id, uint64_t start_ns, int64_t start_unix_ms);

/* Audio received from the client (n mono samples at `rate`), now. */
void recorder_user_audio(recorder *r, const int16_t *pcm, size_t n, int rate);
/* Audio released to the client for assistant item `item_id`, now. */
void recorder_bot_audio(recorder *r, const int16_t *pcm, size_t n, int rate, const char *item_id);
/* Playback stopped now (barge-in, response.cancel): bot audio placed after
 * this moment was never heard and is removed. */
void recorder_bot_stop(recorder *r);
/* The client played only the first audio_end_ms of item_id's audio. Only
 * applies while that item is the last bot audio recorded. */
void recorder_bot_truncate(recorder *r, const char *item_id, int audio_end_ms);

/* Sidecar notes. Each turn is one object in "turns", found by item id and
 * created (with its role) on first use. key = text; key = milliseconds
 * since the session started (ms < 0: now). NULL-safe. */
void recorder_note(recorder *r, const char *item_id, const char *role, const char *key, const char *text);
void recorder_note_ms(recorder *r, const char *item_id, const char *role, const char *key, long long ms);
/* Milliseconds since the session started, now. */
long long recorder_now_ms(const recorder *r);
/* Position (ms) of the end of the user audio recorded so far. */
long long recorder_user_end_ms(const recorder *r);
/* A provider instance served a stage ("stt", "llm", "tts"). */
void recorder_provider(recorder *r, const char *stage, const char *instance);

/* The session ended (end_reason: "client_closed", "idle_timeout",
 * "max_duration", "server_shutdown"...): finish the files in the background
 * and submit the job; r is freed. NULL-safe. */
void recorder_close(recorder *r, const char *end_reason);

/* At start-up: turn <spool>/live/<id>/ left by a crash into <id>.wav and
 * <id>.json (marked incomplete and recovered). 0 on success (the live
 * folder is removed), -1 otherwise (it is kept). */
int recorder_salvage(const settings *s, const char *id);

#endif
