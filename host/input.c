/*
 * Audio in: client PCM -> resample to the STT rate -> VAD (server_vad) or
 * manual commits -> one STT stream per user turn -> transcript -> response.
 *
 * The STT stream of a turn is opened when speech starts (with the prefix
 * padding kept in a ring buffer) and finished when it ends; in manual mode
 * it opens with the first append after a commit/clear and finishes on
 * commit. STT keeps listening while the bot speaks; speech during a
 * response interrupts it when turn_detection.interrupt_response is on.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "resample.h"
#include "session_int.h"
#include "stage.h"
#include "vad.h"

#define RING_MS 1500
#define BLOCK_MS 10

static int stt_rate(const session *s) { return s->a->s.stt_sample_rate; }

static void vad_params_from(const session *s, vad_params *p)
{
    vad_params_default(p);
    p->threshold = s->cfg.turn.threshold;
    p->prefix_padding_ms = s->cfg.turn.prefix_padding_ms;
    p->silence_duration_ms = s->cfg.turn.silence_duration_ms;
}

int input_init(session *s)
{
    input_state *in = &s->in;
    vad_params p;
    vad_params_from(s, &p);
    in->rs_in_rate = s->cfg.input_rate;
    in->rs = resampler_new(s->cfg.input_rate, stt_rate(s), 3);
    in->vad = vad_new(stt_rate(s), &p);
    in->ring_cap = (size_t)stt_rate(s) * RING_MS / 1000;
    in->ring = malloc(in->ring_cap * sizeof *in->ring);
    return in->rs && in->vad && in->ring ? 0 : -1;
}

void input_free(session *s)
{
    input_state *in = &s->in;
    if (in->stt) {
        stage_cancel(in->stt);
        stage_release(in->stt);
        in->stt = NULL;
    }
    resampler_free(in->rs);
    vad_free(in->vad);
    free(in->ring);
    free(in->partial);
    free(in->scratch);
    in->rs = NULL;
    in->vad = NULL;
    in->ring = NULL;
    in->partial = NULL;
    in->scratch = NULL;
    in->ring_len = in->ring_cap = in->scratch_cap = 0;
}

int input_reconfigure(session *s)
{
    input_state *in = &s->in;
    vad_params p;
    vad_params_from(s, &p);
    if (in->vad) vad_set_params(in->vad, &p);
    if (in->rs_in_rate != s->cfg.input_rate) {
        resampler *r = resampler_new(s->cfg.input_rate, stt_rate(s), 3);
        if (r == NULL) return -1;
        resampler_free(in->rs);
        in->rs = r;
        in->rs_in_rate = s->cfg.input_rate;
    }
    return 0;
}

int input_transcribing(const session *s) { return s->in.awaiting_final; }

static void ring_push(input_state *in, const int16_t *pcm, size_t n)
{
    if (n >= in->ring_cap) {
        memcpy(in->ring, pcm + n - in->ring_cap, in->ring_cap * sizeof *pcm);
        in->ring_len = in->ring_cap;
        return;
    }
    if (in->ring_len + n > in->ring_cap) {
        size_t drop = in->ring_len + n - in->ring_cap;
        memmove(in->ring, in->ring + drop, (in->ring_len - drop) * sizeof *pcm);
        in->ring_len -= drop;
    }
    memcpy(in->ring + in->ring_len, pcm, n * sizeof *pcm);
    in->ring_len += n;
}

/* ------------------------------------------------------------ STT events */

static void stt_partial(void *user, stage_call *c, const char *text)
{
    session *s = user;
    input_state *in = &s->in;
    if (c != in->stt || !s->cfg.transcription) return;
    /* Deltas are append-only: send what extends the previous hypothesis. */
    const char *old = in->partial ? in->partial : "";
    size_t ol = strlen(old);
    if (strncmp(text, old, ol) == 0 && strlen(text) > ol) {
        sess_send(s, proto_ev_transcription_delta(s->d, in->item_id, text + ol));
        free(in->partial);
        in->partial = strdup(text);
    }
}

static void turn_done(session *s)
{
    input_state *in = &s->in;
    if (in->stt) {
        stage_release(in->stt);
        in->stt = NULL;
    }
    in->awaiting_final = 0;
    free(in->partial);
    in->partial = NULL;
}

static void maybe_respond(session *s, int create)
{
    if (s->resp_waiting) {
        char *instr = s->resp_wait_instructions;
        unsigned mods = s->resp_wait_modalities;
        s->resp_waiting = 0;
        s->resp_wait_instructions = NULL;
        respond_start(s, instr, mods, NULL);
        free(instr);
        return;
    }
    if (create && s->resp == NULL) respond_start(s, NULL, 0, NULL);
}

static void stt_final(void *user, stage_call *c, const char *text, float conf)
{
    session *s = user;
    input_state *in = &s->in;
    (void)conf;
    if (c != in->stt) return;
    item *it = conv_find(&s->conv, in->item_id);
    if (it) {
        conv_set_text(it, text);
        snprintf(it->status, sizeof it->status, "completed");
    }
    log_info("stt transcript received", "session_id", s->id, "text", text, "model", stage_call_model(c));
    if (s->cfg.transcription) sess_send(s, proto_ev_transcription_completed(s->d, in->item_id, text));
    if (it) {
        proto_item v = conv_view(it);
        sess_send(s, proto_ev_item_done(s->d, &v, it->prev ? it->prev->id : NULL));
    }
    sess_observe_words(1, conv_words(text));
    turn_done(s);
    /* Nothing heard: no answer (a cough, a door). */
    int create = s->cfg.turn.enabled && s->cfg.turn.create_response && text[0] != '\0';
    if (text[0] == '\0' && s->resp_waiting) {
        s->resp_waiting = 0;
        free(s->resp_wait_instructions);
        s->resp_wait_instructions = NULL;
        create = 0;
        respond_start(s, NULL, 0, NULL);
        return;
    }
    maybe_respond(s, create);
}

static void stt_error(void *user, stage_call *c, const vx_error *err)
{
    session *s = user;
    input_state *in = &s->in;
    if (c != in->stt) return;
    log_warn("transcription failed", "session_id", s->id, "error", err->msg);
    proto_error e;
    memset(&e, 0, sizeof e);
    snprintf(e.type, sizeof e.type, "server_error");
    snprintf(e.code, sizeof e.code, "transcription_failed");
    snprintf(e.message, sizeof e.message, "speech recognition failed: %.200s", err->msg);
    if (in->item_id[0]) sess_send(s, proto_ev_transcription_failed(s->d, in->item_id, &e));
    item *it = conv_find(&s->conv, in->item_id);
    if (it) snprintf(it->status, sizeof it->status, "incomplete");
    turn_done(s);
    if (s->resp_waiting) {
        s->resp_waiting = 0;
        free(s->resp_wait_instructions);
        s->resp_wait_instructions = NULL;
        respond_start(s, NULL, 0, NULL);
    }
}

static const stage_events stt_events_tmpl = {
    .on_partial = stt_partial,
    .on_final = stt_final,
    .on_error = stt_error,
};

/* Open the STT stream of a new user turn; false if no provider. */
static int open_turn(session *s)
{
    input_state *in = &s->in;
    stage_events ev = stt_events_tmpl;
    ev.user = s;
    if (in->stt) { /* an unfinished turn: replace it */
        stage_cancel(in->stt);
        stage_release(in->stt);
        in->stt = NULL;
    }
    free(in->partial);
    in->partial = NULL;
    proto_new_id("item_", in->item_id, sizeof in->item_id);
    in->stt = stage_stt_open(s->sx, stt_rate(s), &ev);
    if (in->stt == NULL) {
        sess_error(s, "server_error", "no_stt_provider", "no speech-to-text provider is available", NULL, NULL);
        return 0;
    }
    return 1;
}

/* The user turn's audio is complete: commit the item, finish STT. */
static void close_turn(session *s, uint64_t end_pos)
{
    input_state *in = &s->in;
    (void)end_pos;
    in->t_speech_end_ns = sess_now_ns();
    const char *prev = s->conv.tail ? s->conv.tail->id : NULL;
    char prev_id[40] = "";
    if (prev) snprintf(prev_id, sizeof prev_id, "%s", prev);
    sess_send(s, proto_ev_audio_committed(s->d, in->item_id, prev_id[0] ? prev_id : NULL));
    item *it = conv_add(&s->conv, NULL, in->item_id, "user", PROTO_INPUT_AUDIO, NULL, "in_progress");
    if (it) {
        proto_item v = conv_view(it);
        sess_send(s, proto_ev_item_added(s->d, &v, prev_id[0] ? prev_id : NULL));
    }
    if (in->stt) {
        in->awaiting_final = 1;
        stage_stt_finish(in->stt);
    }
}

/* ------------------------------------------------------------ VAD */

typedef struct vad_ctx {
    session *s;
    int start, end;
    uint64_t start_pos, end_pos;
} vad_ctx;

static void on_vad(void *user, vad_event e, uint64_t pos)
{
    vad_ctx *v = user;
    if (e == VAD_SPEECH_START) {
        v->start = 1;
        v->start_pos = pos;
    } else {
        v->end = 1;
        v->end_pos = pos;
    }
}

static int ms_of(const session *s, uint64_t pos) { return (int)(pos * 1000 / (uint64_t)stt_rate(s)); }

/* One block of STT-rate audio in server_vad mode. */
static void vad_block(session *s, const int16_t *pcm, size_t n)
{
    input_state *in = &s->in;
    vad_ctx v = {s, 0, 0, 0, 0};
    uint64_t block_start = in->pos;
    vad_feed(in->vad, pcm, n, on_vad, &v);
    v.start_pos += in->vad_base;
    v.end_pos += in->vad_base;
    in->pos += n;
    ring_push(in, pcm, n);

    if (v.start && !in->in_speech) {
        in->in_speech = 1;
        in->speech_start_pos = v.start_pos;
        if (open_turn(s)) {
            sess_send(s, proto_ev_speech_started(s->d, ms_of(s, v.start_pos), in->item_id));
            if (s->resp && s->cfg.turn.interrupt_response) respond_cancel(s, "turn_detected");
            /* Feed from prefix_padding before the start, out of the ring. */
            uint64_t pad = (uint64_t)s->cfg.turn.prefix_padding_ms * (uint64_t)stt_rate(s) / 1000;
            uint64_t from = v.start_pos > pad ? v.start_pos - pad : 0;
            uint64_t ring_start = in->pos - in->ring_len;
            if (from < ring_start) from = ring_start;
            stage_stt_feed(in->stt, in->ring + (from - ring_start), (size_t)(in->pos - from));
        } else {
            in->in_speech = 0;
        }
    } else if (in->in_speech && in->stt) {
        stage_stt_feed(in->stt, pcm, n);
    }
    (void)block_start;
    if (v.end && in->in_speech) {
        in->in_speech = 0;
        sess_send(s, proto_ev_speech_stopped(s->d, ms_of(s, v.end_pos), in->item_id));
        close_turn(s, v.end_pos);
    }
}

void input_append(session *s, const int16_t *pcm, size_t n)
{
    input_state *in = &s->in;
    if (in->rs == NULL || n == 0) return;
    size_t cap = resampler_out_capacity(in->rs, n);
    if (cap > in->scratch_cap) {
        int16_t *nb = realloc(in->scratch, cap * sizeof *nb);
        if (nb == NULL) return;
        in->scratch = nb;
        in->scratch_cap = cap;
    }
    size_t got = resampler_process(in->rs, pcm, n, in->scratch, in->scratch_cap);
    if (!s->cfg.turn.enabled) {
        /* Manual: everything appended belongs to the next commit. */
        if (!in->buffered) {
            in->buffered = 1;
            if (!open_turn(s)) return;
        }
        in->pos += got;
        if (in->stt) stage_stt_feed(in->stt, in->scratch, got);
        return;
    }
    size_t block = (size_t)stt_rate(s) * BLOCK_MS / 1000;
    for (size_t off = 0; off < got; off += block) {
        size_t k = got - off < block ? got - off : block;
        vad_block(s, in->scratch + off, k);
    }
}

void input_commit(session *s, const char *event_id)
{
    input_state *in = &s->in;
    if (s->cfg.turn.enabled) {
        /* server_vad: commit ends the current speech early, if any. */
        if (!in->in_speech) {
            sess_error(s, "invalid_request_error", "input_audio_buffer_commit_empty",
                       "no speech in the input audio buffer to commit", NULL, event_id);
            return;
        }
        in->in_speech = 0;
        vad_reset(in->vad);
        in->vad_base = in->pos;
        close_turn(s, in->pos);
        return;
    }
    if (!in->buffered) {
        sess_error(s, "invalid_request_error", "input_audio_buffer_commit_empty",
                   "the input audio buffer is empty: append audio before committing", NULL, event_id);
        return;
    }
    in->buffered = 0;
    close_turn(s, in->pos);
}

void input_clear(session *s)
{
    input_state *in = &s->in;
    if (in->stt && !in->awaiting_final) {
        stage_cancel(in->stt);
        stage_release(in->stt);
        in->stt = NULL;
        in->item_id[0] = '\0';
    }
    in->buffered = 0;
    in->in_speech = 0;
    in->ring_len = 0;
    if (in->vad) vad_reset(in->vad);
    in->vad_base = in->pos;
    if (in->rs) resampler_reset(in->rs);
}
