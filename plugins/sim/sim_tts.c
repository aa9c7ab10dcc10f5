/*
 * sim TTS: a sine tone as long as the text (characters x ms_per_char),
 * in chunks of chunk_ms.
 *
 * The tone sits at about -12 dBFS with a 5 ms fade at each end of the call,
 * so consecutive replies join without clicks. The voice picks the
 * frequency: alto 220 Hz, tenor 165 Hz, any other name a fixed frequency
 * between 110 and 440 Hz derived from its hash. The first chunk comes after
 * latency; the others at once, or, with realtime, each one chunk's duration
 * (plus jitter) after the previous.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define TTS_AMPLITUDE 8231.0 /* 32767 * 10^(-12/20) */
#define TTS_FADE_MS 5

typedef struct sim_tts {
    struct vx_stream base;
    vx_tts_events ev;
    uint32_t rate;
    double freq;
    uint64_t total;    /* frames of the whole reply */
    uint64_t chunk;    /* frames per chunk; the last may be shorter */
    uint64_t n_chunks;
    uint64_t next;     /* next event: chunk next, or on_done when next == n_chunks */
    uint64_t fail_idx; /* the event replaced by on_error, when the call fails */
    uint64_t fade;     /* frames of each fade */
    uint64_t due;
    int16_t *buf; /* one chunk, only touched by the firing job */
} sim_tts;

static double tts_voice_freq(const char *voice) {
    uint32_t h = 2166136261u;

    if (strcmp(voice, "alto") == 0) return 220.0;
    if (strcmp(voice, "tenor") == 0) return 165.0;
    for (const unsigned char *p = (const unsigned char *)voice; *p; p++) h = (h ^ *p) * 16777619u;
    return 110.0 + (double)(h % 331);
}

/* Characters, not bytes: UTF-8 continuation bytes do not count. */
static uint64_t tts_chars(const char *text) {
    uint64_t n = 0;

    for (const unsigned char *p = (const unsigned char *)text; *p; p++) n += (*p & 0xc0) != 0x80;
    return n;
}

static uint64_t tts_frames(const sim_tts *t, uint64_t i) {
    uint64_t left = t->total - i * t->chunk;
    return left < t->chunk ? left : t->chunk;
}

static int tts_peek(struct vx_stream *s, uint64_t *due) {
    *due = ((sim_tts *)s)->due;
    return 1;
}

static void tts_take(struct vx_stream *s, sim_event *ev) {
    sim_tts *t = (sim_tts *)s;

    if (s->fate.fail && t->next == t->fail_idx) {
        ev->error = ev->terminal = 1;
        return;
    }
    ev->index = t->next;
    if (t->next == t->n_chunks) {
        ev->terminal = 1;
        return;
    }
    if (s->in->realtime && t->next + 1 < t->n_chunks)
        t->due += tts_frames(t, t->next) * 1000000000ull / t->rate +
                  sim_jitter_ns(s->in, &s->fate.rng);
    t->next++;
}

static void tts_render(sim_tts *t, uint64_t i, size_t frames) {
    uint64_t n0 = i * t->chunk;

    for (size_t k = 0; k < frames; k++) {
        uint64_t n = n0 + k;
        double g = 1.0;
        if (n < t->fade) g = (double)(n + 1) / (double)(t->fade + 1);
        if (t->total - 1 - n < t->fade) {
            double g2 = (double)(t->total - n) / (double)(t->fade + 1);
            if (g2 < g) g = g2;
        }
        double phase = 2.0 * M_PI * t->freq * (double)n / t->rate;
        t->buf[k] = (int16_t)lrint(TTS_AMPLITUDE * g * sin(phase));
    }
}

static void tts_deliver(struct vx_stream *s, sim_event *ev) {
    sim_tts *t = (sim_tts *)s;

    if (ev->error) {
        t->ev.on_error(t->ev.user, &ev->err);
    } else if (ev->index == t->n_chunks) {
        t->ev.on_done(t->ev.user);
    } else {
        size_t frames = (size_t)tts_frames(t, ev->index);
        tts_render(t, ev->index, frames);
        t->ev.on_audio(t->ev.user, t->buf, frames);
    }
}

static void tts_destroy(struct vx_stream *s) {
    free(((sim_tts *)s)->buf);
}

static const sim_kind_ops tts_ops = {tts_peek, tts_take, tts_deliver, tts_destroy};

/* Fails at start with the simulated error, VX_EINVAL (no text or missing
 * callbacks), VX_ENOMEM; with hang = block returns VX_ECANCELED with *out
 * set (see sim_stream_block). */
static int tts_synthesize(void *inst, const char *text, const char *voice, vx_audio_format *fmt,
                          const vx_tts_events *ev, vx_stream **out, vx_error *err) {
    sim_inst *in = inst;
    vx_tts_events e = {0};
    sim_tts *t = NULL;
    sim_fate f;
    int rc;

    /* Atomic: with hang = block another thread may be polling *out. */
    __atomic_store_n(out, NULL, __ATOMIC_RELAXED);
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!text || !fmt || !e.on_audio || !e.on_done || !e.on_error) {
        sim_seterr(err, VX_EINVAL, 0, "sim: synthesize needs text, fmt and all three events");
        return VX_EINVAL;
    }
    sim_call_begin(in, &f);
    if (f.fail && in->fail_at == SIM_AT_START) return sim_fail_now(in, &f, err);

    if (!(t = calloc(1, sizeof(*t)))) goto oom;
    t->ev = e;
    t->rate = in->sample_rate;
    t->freq = tts_voice_freq(voice && *voice ? voice : in->voice);
    t->total = tts_chars(text) * in->ms_per_char * (uint64_t)t->rate / 1000;
    t->chunk = (uint64_t)in->chunk_ms * t->rate / 1000;
    if (t->chunk == 0) t->chunk = 1;
    t->n_chunks = (t->total + t->chunk - 1) / t->chunk;
    t->fade = (uint64_t)TTS_FADE_MS * t->rate / 1000;
    /* mid_stream: half the chunks, at least one, then the error. */
    t->fail_idx = in->fail_at == SIM_AT_MID_STREAM ? (t->n_chunks / 2 ? t->n_chunks / 2 : 1) : 0;
    if (t->fail_idx > t->n_chunks) t->fail_idx = t->n_chunks; /* no audio: fail anyway */
    if (!(t->buf = malloc(t->chunk * sizeof(*t->buf)))) goto oom;
    t->due = sim_now_ns() + in->latency_ns + sim_jitter_ns(in, &f.rng);
    if ((rc = sim_stream_init(&t->base, in, &tts_ops, &f, err)) != VX_OK) {
        tts_destroy(&t->base);
        free(t);
        return rc;
    }
    fmt->sample_rate = t->rate;
    fmt->channels = 1;
    fmt->encoding = VX_PCM_S16LE;
    if (in->hang == SIM_HANG_BLOCK) return sim_stream_block(&t->base, out, err);
    if ((rc = sim_stream_start(&t->base, err)) != VX_OK) {
        sim_stream_close(&t->base);
        return rc;
    }
    *out = &t->base;
    return VX_OK;
oom:
    if (t) tts_destroy(&t->base);
    free(t);
    sim_seterr(err, VX_ENOMEM, 1, "sim: out of memory starting a synthesis");
    return VX_ENOMEM;
}

const vx_tts_vtable sim_tts_vtable = {
    .struct_size = sizeof(vx_tts_vtable),
    .synthesize = tts_synthesize,
    .cancel = sim_stream_cancel,
    .close = sim_stream_close,
};
