/*
 * Energy voice-activity detection (see vad.h for the contract).
 *
 * Per 10 ms frame: level = RMS in dBFS. Onset = max(fixed onset from
 * threshold, noise floor + noise_margin_db); end level = onset -
 * hysteresis_db (but at least VAD_END_ABOVE_FLOOR_DB above the floor, so a
 * margin smaller than the hysteresis cannot leave steady noise "speaking"
 * forever).
 *
 * Silence: a run of min_speech frames above the onset starts speech; the
 * START position is the first sample of that run. Speech: a run of
 * silence_duration frames below the end level ends it; the END position is
 * the first sample of that run. Either run is broken by one frame on the
 * other side.
 *
 * Noise floor (dB domain): set by the very first frame, then, only while
 * not in speech, it follows the frame level down quickly and up slowly.
 * It never moves during speech, so a long turn cannot teach the detector
 * that the speaker is background. The price: noise that switches on above
 * the onset level after a quiet start is speech until it stops, because the
 * floor only learns from what it hears outside speech.
 *
 * Partial frames: only the sum of squares and the sample count are kept,
 * in integers, so the outcome does not depend on how the input was split.
 */
#include "config.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "pipeline/vad.h"

#define VAD_RATE_MIN 1000
#define VAD_RATE_MAX 384000
#define VAD_SILENCE_DB (-100.0)
#define VAD_FLOOR_DOWN 0.1   /* per frame: time constant ~100 ms */
#define VAD_FLOOR_UP 0.01    /* per frame: time constant ~1 s */
#define VAD_END_ABOVE_FLOOR_DB 3.0

struct vad {
    vad_params p;
    int rate;
    unsigned frame_len;     /* samples per 10 ms frame */
    unsigned speech_frames; /* min_speech_ms in frames, >= 1 */
    unsigned silence_frames;/* silence_duration_ms in frames, >= 1 */
    double onset_db;        /* from threshold alone */

    /* partial frame */
    uint64_t acc;           /* sum of squares; < 2^31 * 3840, no overflow */
    unsigned acc_n;

    uint64_t frame_no;      /* completed frames since new/reset */
    int in_speech;
    unsigned run;           /* frames in the current start (or end) run */
    uint64_t run_start;     /* frame index where that run began */
    int floor_set;
    double floor_db;
};

void vad_params_default(vad_params *p)
{
    p->threshold = 0.5;
    p->prefix_padding_ms = 300;
    p->silence_duration_ms = 500;
    p->min_speech_ms = 60;
    p->hysteresis_db = 6.0;
    p->noise_margin_db = 12.0;
}

static unsigned vad_ms_to_frames(int ms)
{
    if (ms <= 10) return 1;
    return (unsigned)((ms + 9) / 10);
}

static void vad_apply_params(vad *v, const vad_params *p)
{
    vad_params d;
    if (!p) {
        vad_params_default(&d);
        p = &d;
    }
    v->p = *p;
    if (!(v->p.threshold >= 0.0)) v->p.threshold = 0.0; /* also catches NaN */
    if (v->p.threshold > 1.0) v->p.threshold = 1.0;
    if (v->p.prefix_padding_ms < 0) v->p.prefix_padding_ms = 0;
    if (!(v->p.hysteresis_db >= 0.0)) v->p.hysteresis_db = 0.0;
    if (!(v->p.noise_margin_db >= 0.0)) v->p.noise_margin_db = 0.0;
    v->onset_db = -70.0 + 50.0 * v->p.threshold;
    v->speech_frames = vad_ms_to_frames(v->p.min_speech_ms);
    v->silence_frames = vad_ms_to_frames(v->p.silence_duration_ms);
}

vad *vad_new(int sample_rate, const vad_params *p)
{
    vad *v;

    if (sample_rate < VAD_RATE_MIN || sample_rate > VAD_RATE_MAX) return NULL;
    v = calloc(1, sizeof *v);
    if (!v) return NULL;
    v->rate = sample_rate;
    v->frame_len = (unsigned)(sample_rate / 100);
    vad_apply_params(v, p);
    vad_reset(v);
    return v;
}

void vad_free(vad *v)
{
    free(v);
}

void vad_set_params(vad *v, const vad_params *p)
{
    vad_apply_params(v, p);
}

int vad_silence_ms(const vad *v)
{
    return v->in_speech ? (int)(v->run * 10u) : 0;
}

int vad_in_speech(const vad *v)
{
    return v->in_speech;
}

void vad_reset(vad *v)
{
    v->acc = 0;
    v->acc_n = 0;
    v->frame_no = 0;
    v->in_speech = 0;
    v->run = 0;
    v->run_start = 0;
    v->floor_set = 0;
    v->floor_db = VAD_SILENCE_DB;
}

static double vad_db(uint64_t sumsq, size_t n)
{
    double ms, db;
    if (n == 0 || sumsq == 0) return VAD_SILENCE_DB;
    ms = (double)sumsq / (double)n / (32768.0 * 32768.0);
    db = 10.0 * log10(ms);
    return db < VAD_SILENCE_DB ? VAD_SILENCE_DB : db;
}

double vad_level_dbfs(const int16_t *pcm, size_t n)
{
    uint64_t acc = 0;
    size_t i;
    for (i = 0; i < n; i++) acc += (uint64_t)((int32_t)pcm[i] * (int32_t)pcm[i]);
    return vad_db(acc, n);
}

/* One complete frame of level `db`. */
static void vad_frame(vad *v, double db,
                      void (*cb)(void *user, vad_event ev, uint64_t pos), void *user)
{
    double onset, end;

    if (!v->floor_set) {
        v->floor_db = db;
        v->floor_set = 1;
    }
    onset = v->onset_db;
    if (v->floor_db + v->p.noise_margin_db > onset) onset = v->floor_db + v->p.noise_margin_db;
    end = onset - v->p.hysteresis_db;
    if (end < v->floor_db + VAD_END_ABOVE_FLOOR_DB) end = v->floor_db + VAD_END_ABOVE_FLOOR_DB;

    if (!v->in_speech) {
        if (db > onset) {
            if (v->run++ == 0) v->run_start = v->frame_no;
            if (v->run >= v->speech_frames) {
                v->in_speech = 1;
                v->run = 0;
                if (cb) cb(user, VAD_SPEECH_START, v->run_start * v->frame_len);
            }
        } else {
            v->run = 0;
        }
        /* The floor learns only outside speech; the frames of a run that
         * has not (yet) started speech count as outside, and move it by 1%
         * of the gap each. */
        if (!v->in_speech)
            v->floor_db += (db - v->floor_db) * (db < v->floor_db ? VAD_FLOOR_DOWN : VAD_FLOOR_UP);
    } else {
        if (db < end) {
            if (v->run++ == 0) v->run_start = v->frame_no;
            if (v->run >= v->silence_frames) {
                v->in_speech = 0;
                v->run = 0;
                if (cb) cb(user, VAD_SPEECH_END, v->run_start * v->frame_len);
            }
        } else {
            v->run = 0;
        }
    }
    v->frame_no++;
}

void vad_feed(vad *v, const int16_t *pcm, size_t n,
              void (*cb)(void *user, vad_event ev, uint64_t pos), void *user)
{
    size_t i;
    for (i = 0; i < n; i++) {
        int32_t s = pcm[i];
        v->acc += (uint64_t)(s * s);
        if (++v->acc_n == v->frame_len) {
            vad_frame(v, vad_db(v->acc, v->acc_n), cb, user);
            v->acc = 0;
            v->acc_n = 0;
        }
    }
}
