/*
 * Energy voice-activity detection with hysteresis, shaped like the OpenAI
 * Realtime API's server_vad: `threshold` (0..1, higher = needs louder
 * speech), `prefix_padding_ms` (audio kept from before the detected start),
 * `silence_duration_ms` (silence that ends a turn).
 *
 * The signal is cut into 10 ms frames; a frame's level is its RMS in dBFS.
 * threshold maps linearly to an onset level: 0 -> -70 dBFS, 0.5 -> -45 dBFS,
 * 1 -> -20 dBFS. Speech starts after min_speech_ms of frames above the onset
 * level; it ends after silence_duration_ms of frames below the onset level
 * minus hysteresis_db. A slowly tracked noise floor keeps the onset at least
 * noise_margin_db above steady background noise.
 *
 * The noise floor is seeded by the first frame and learns only outside
 * speech (down within ~100 ms, up within ~1 s); it never rises during
 * speech, so a long steady voice is not mistaken for background. Two
 * consequences: a stream that starts in the middle of loud speech is not
 * detected until the floor has heard a pause, and noise that switches on
 * above the onset level after a quiet start counts as speech until it
 * stops. Keep noise_margin_db above hysteresis_db (the end level is held
 * at least 3 dB above the floor either way).
 *
 * Frame decisions depend only on the samples, never on how they were split
 * across vad_feed calls.
 */
#ifndef VOXRAY_VAD_H
#define VOXRAY_VAD_H

#include <stddef.h>
#include <stdint.h>

typedef struct vad_params {
    double threshold;        /* 0..1, default 0.5 */
    int prefix_padding_ms;   /* default 300 */
    int silence_duration_ms; /* default 500 */
    int min_speech_ms;       /* default 60 */
    double hysteresis_db;    /* default 6 */
    double noise_margin_db;  /* default 12 */
} vad_params;

void vad_params_default(vad_params *p);

typedef enum vad_event {
    VAD_SPEECH_START = 1, /* pos: first sample of speech, prefix padding NOT included
                           * (the first sample of the first frame of the
                           * min_speech_ms run; reported when the run completes) */
    VAD_SPEECH_END        /* pos: first sample after the speech (the silence start:
                           * first sample of the silence_duration_ms run;
                           * reported when the run completes) */
} vad_event;

typedef struct vad vad;

/* p NULL = defaults; out-of-range fields are clamped. NULL on a bad rate
 * (< 1000 or > 384000) or allocation failure. */
vad *vad_new(int sample_rate, const vad_params *p);
void vad_free(vad *v);
/* Change parameters mid-stream (session.update); keeps the current state. */
void vad_set_params(vad *v, const vad_params *p);
/* 1 while inside speech. */
int vad_in_speech(const vad *v);
/* Inside speech: how long the current run of frames below the end level
 * has lasted (ms), i.e. the pause so far; 0 outside speech or while the
 * last frame was speech. */
int vad_silence_ms(const vad *v);
/* Return to silence, forgetting partial frames (input_audio_buffer.clear). */
void vad_reset(vad *v);

/* Feed samples. For every state change, cb(user, event, pos) is called in
 * order, pos being the absolute sample index since vad_new/vad_reset.
 * cb may be NULL. */
void vad_feed(vad *v, const int16_t *pcm, size_t n,
              void (*cb)(void *user, vad_event ev, uint64_t pos), void *user);

/* RMS level of a block in dBFS (-100 for digital silence). */
double vad_level_dbfs(const int16_t *pcm, size_t n);

#endif
