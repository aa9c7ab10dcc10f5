/*
 * sim STT: "hears" the configured transcript in whatever audio it is fed.
 *
 * While audio of an utterance arrives, partials grow by one word of the
 * transcript per partial_every of audio, counted in samples at the stream's
 * rate (never wall-clock), so the same audio gives the same partials however
 * fast it is fed. The first partial of an utterance waits for latency after
 * its first audio; finish() queues the final latency later. With
 * `transcripts`, each utterance takes the next entry, cycling across the
 * instance (a host opens one stream per turn); an utterance without audio
 * is final "" and does not advance the cycle.
 *
 * feed() and finish() only queue timed events; the stream's timer job
 * fires them in order. Failures count outputs across the whole stream:
 * first_output replaces the stream's first partial or final by on_error,
 * mid_stream its second.
 */
#include <stdlib.h>
#include <string.h>

#include "sim.h"

#define STT_CONFIDENCE 0.9f

enum { STT_PARTIAL, STT_FINAL, STT_ERROR };

typedef struct stt_node {
    struct stt_node *next;
    int type; /* STT_* */
    uint64_t due;
    char text[];
} stt_node;

typedef struct sim_stt {
    struct vx_stream base;
    vx_stt_events ev;
    uint32_t rate;
    stt_node *head, *tail;
    uint64_t last_due;  /* events stay in order: nothing is due before this */
    uint64_t outputs;   /* outputs queued so far, for fail_at */
    int failed;         /* an on_error is queued: refuse further audio */
    uint64_t utt;       /* index of the current utterance's transcript */
    uint64_t frames;    /* audio of the current utterance */
    uint64_t first_due; /* earliest time for the utterance's first partial */
    size_t shown;       /* words in the last partial */
} sim_stt;

static const char *stt_transcript(sim_stt *t) {
    sim_inst *in = t->base.in;
    return in->transcripts[t->utt % in->n_transcripts];
}

/* Queue the next output (text[0..len)) unless the call's fate replaces it
 * by on_error. Mutex held. Returns VX_ENOMEM when the node cannot be made,
 * or the host's error when no timer can fire it (it stays queued). */
static int stt_queue(sim_stt *t, int type, const char *text, size_t len, uint64_t due,
                     vx_error *err) {
    struct vx_stream *s = &t->base;
    uint64_t fail_idx = s->in->fail_at == SIM_AT_MID_STREAM ? 1 : 0;
    stt_node *n;

    if (s->fate.fail && t->outputs == fail_idx) type = STT_ERROR, len = 0;
    if (!(n = malloc(sizeof(*n) + len + 1))) {
        sim_seterr(err, VX_ENOMEM, 1, "sim: out of memory queueing a transcript");
        return VX_ENOMEM;
    }
    n->next = NULL;
    n->type = type;
    n->due = due > t->last_due ? due : t->last_due;
    memcpy(n->text, text, len);
    n->text[len] = '\0';
    t->last_due = n->due;
    if (t->tail) t->tail->next = n;
    else t->head = n;
    t->tail = n;
    t->outputs++;
    if (type == STT_ERROR) t->failed = 1;
    return sim_stream_kick(s, err);
}

/* Why feed/finish refuse, or VX_OK. Mutex held. */
static int stt_refuse(sim_stt *t, vx_error *err) {
    if (t->base.canceled) {
        sim_seterr(err, VX_ECANCELED, 0, "sim: stream cancelled");
        return VX_ECANCELED;
    }
    if (t->failed) {
        sim_inst *in = t->base.in;
        sim_seterr(err, in->err_code, in->err_retryable, "sim: stream already failed (%s)",
                   in->err_name);
        return in->err_code;
    }
    return VX_OK;
}

static int stt_feed(vx_stream *s, const int16_t *pcm, size_t frames, vx_error *err) {
    sim_stt *t = (sim_stt *)s;
    sim_inst *in = s->in;
    uint64_t now = sim_now_ns(), words, k;
    int rc;

    pthread_mutex_lock(&s->mu);
    if ((rc = stt_refuse(t, err)) != VX_OK || s->hang_silent || frames == 0) goto done;
    if (t->frames == 0) {
        t->first_due = now + in->latency_ns + sim_jitter_ns(in, &s->fate.rng);
        t->utt = atomic_fetch_add(&in->utterances, 1);
    }
    t->frames += frames;
    if (in->partial_every_ms == 0) goto done;
    words = sim_count_words(stt_transcript(t));
    k = t->frames * 1000 / t->rate / in->partial_every_ms;
    if (k > words) k = words;
    if (k > t->shown) {
        const char *text = stt_transcript(t);
        uint64_t due = t->shown == 0 ? t->first_due : now;
        t->shown = (size_t)k;
        rc = stt_queue(t, STT_PARTIAL, text, sim_prefix_len(text, t->shown), due, err);
    }
done:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int stt_finish(vx_stream *s, vx_error *err) {
    sim_stt *t = (sim_stt *)s;
    sim_inst *in = s->in;
    const char *text = "";
    int rc;

    pthread_mutex_lock(&s->mu);
    if ((rc = stt_refuse(t, err)) != VX_OK || s->hang_silent) goto done;
    if (t->frames) text = stt_transcript(t);
    rc = stt_queue(t, STT_FINAL, text, strlen(text),
                   sim_now_ns() + in->latency_ns + sim_jitter_ns(in, &s->fate.rng), err);
    t->frames = 0;
    t->shown = 0;
done:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static int stt_peek(struct vx_stream *s, uint64_t *due) {
    sim_stt *t = (sim_stt *)s;

    if (!t->head) return 0;
    *due = t->head->due;
    return 1;
}

static void stt_take(struct vx_stream *s, sim_event *ev) {
    sim_stt *t = (sim_stt *)s;
    stt_node *n = t->head;

    t->head = n->next;
    if (!t->head) t->tail = NULL;
    ev->node = n;
    if (n->type == STT_ERROR) ev->error = ev->terminal = 1;
}

static void stt_deliver(struct vx_stream *s, sim_event *ev) {
    sim_stt *t = (sim_stt *)s;
    stt_node *n = ev->node;

    if (ev->error) t->ev.on_error(t->ev.user, &ev->err);
    else if (n->type == STT_PARTIAL) t->ev.on_partial(t->ev.user, n->text);
    else t->ev.on_final(t->ev.user, n->text, STT_CONFIDENCE);
    free(n);
}

static void stt_destroy(struct vx_stream *s) {
    sim_stt *t = (sim_stt *)s;

    while (t->head) {
        stt_node *n = t->head;
        t->head = n->next;
        free(n);
    }
}

static const sim_kind_ops stt_ops = {stt_peek, stt_take, stt_deliver, stt_destroy};

/* Any rate and channel count of s16le is accepted (audio time is what
 * counts). Fails at start with the simulated error, VX_ENOTSUP (another
 * encoding), VX_EINVAL, VX_ENOMEM; with hang = block returns VX_ECANCELED
 * with *out set (see sim_stream_block). */
static int stt_open(void *inst, const vx_audio_format *fmt, const vx_stt_events *ev,
                    vx_stream **out, vx_error *err) {
    sim_inst *in = inst;
    vx_stt_events e = {0};
    sim_stt *t;
    sim_fate f;
    int rc;

    /* Atomic: with hang = block another thread may be polling *out. */
    __atomic_store_n(out, NULL, __ATOMIC_RELAXED);
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!fmt || fmt->sample_rate == 0 || fmt->channels == 0 || !e.on_partial || !e.on_final ||
        !e.on_error) {
        sim_seterr(err, VX_EINVAL, 0, "sim: open needs a sample rate, channels and all events");
        return VX_EINVAL;
    }
    if (fmt->encoding != VX_PCM_S16LE) {
        sim_seterr(err, VX_ENOTSUP, 0, "sim: only s16le audio");
        return VX_ENOTSUP;
    }
    sim_call_begin(in, &f);
    if (f.fail && in->fail_at == SIM_AT_START) return sim_fail_now(in, &f, err);

    if (!(t = calloc(1, sizeof(*t)))) {
        sim_seterr(err, VX_ENOMEM, 1, "sim: out of memory opening a stream");
        return VX_ENOMEM;
    }
    t->ev = e;
    t->rate = fmt->sample_rate;
    if ((rc = sim_stream_init(&t->base, in, &stt_ops, &f, err)) != VX_OK) {
        free(t);
        return rc;
    }
    if (in->hang == SIM_HANG_BLOCK) return sim_stream_block(&t->base, out, err);
    if ((rc = sim_stream_start(&t->base, err)) != VX_OK) {
        sim_stream_close(&t->base);
        return rc;
    }
    *out = &t->base;
    return VX_OK;
}

static int stt_input_format(void *inst, vx_audio_format *out) {
    out->sample_rate = 16000;
    out->channels = 1;
    out->encoding = VX_PCM_S16LE;
    return VX_OK;
}

const vx_stt_vtable sim_stt_vtable = {
    .struct_size = sizeof(vx_stt_vtable),
    .open = stt_open,
    .feed = stt_feed,
    .finish = stt_finish,
    .cancel = sim_stream_cancel,
    .close = sim_stream_close,
    .input_format = stt_input_format,
};
