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

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "session/persist.h"
#include "recording/recorder.h"
#include "pipeline/resample.h"
#include "session/session_int.h"
#include "pipeline/stage.h"
#include "pipeline/vad.h"

#define RING_MS 1500
#define RING_SLACK(cap) ((cap) / 4 + 1)
#define BLOCK_MS 10

static int stt_rate(const session *s) { return s->a->s.stt_sample_rate; }
static int ms_of(const session *s, uint64_t pos) { return (int)(pos * 1000 / (uint64_t)stt_rate(s)); }

/* Where input position `pos` lies in the recording (ms): the append being
 * processed ends where the recorder placed it. */
static long long rec_ms_of(const session *s, uint64_t pos)
{
    long long back = pos < s->in.append_end ? (long long)ms_of(s, s->in.append_end - pos) : 0;
    long long ms = recorder_user_end_ms(s->rec) - back;
    return ms < 0 ? 0 : ms;
}

/* semantic_vad. The energy VAD still finds speech; the end of a turn
 * weighs the transcript too. Silence after a sentence that sounds finished
 * ends the turn after the eagerness's short silence ([turn] silence_*);
 * silence after one that does not (its last word is a conjunction,
 * preposition, article, pronoun, auxiliary or filler: "I want to", "and",
 * "because", "the", "um") holds the turn open for the eagerness's hold time
 * ([turn] hold_*), during which the user may go on without starting a new
 * turn. The transcript weighed is the final one when a pause already
 * produced it (speculative turns), else the latest partial. */

static const char *const unfinished_words[] = {
    "and", "or", "but", "so", "because", "cause", "if", "when", "while", "then", "than", "that",
    "which", "who", "whom", "whose", "where", "until", "unless", "although", "though", "since",
    "the", "a", "an", "this", "these", "those", "my", "your", "his", "her", "our", "their", "its",
    "to", "of", "in", "on", "at", "for", "with", "from", "about", "into", "by", "like", "as",
    "i", "we", "they", "he", "she", "i'm", "i'd", "i'll", "it's", "there's",
    "is", "are", "was", "were", "am", "be", "been", "have", "has", "had", "do", "does", "did",
    "want", "would", "could", "should", "will", "can", "might", "must", "need", "gonna", "wanna",
    "um", "uh", "er", "erm", "hmm", "mm", "well", "maybe", "also", "just", "very", "really", "some",
    NULL,
};

/* 1 when a hypothesis ends in a word after which a sentence goes on. */
static int sounds_unfinished(const char *text)
{
    if (text == NULL) return 0;
    size_t n = strlen(text);
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '.' || text[n - 1] == '!' || text[n - 1] == '?')) {
        if (text[n - 1] != ' ') return 0; /* the recognizer punctuated an end */
        n--;
    }
    if (n > 0 && text[n - 1] == ',') return 1;
    size_t b = n;
    while (b > 0 && text[b - 1] != ' ') b--;
    char w[32];
    size_t k = 0;
    for (size_t i = b; i < n && k + 1 < sizeof w; i++) w[k++] = (char)tolower((unsigned char)text[i]);
    w[k] = '\0';
    if (k == 0) return 0;
    for (int i = 0; unfinished_words[i]; i++)
        if (strcmp(w, unfinished_words[i]) == 0) return 1;
    return 0;
}

static int eager_index(const session *s)
{
    int e = s->cfg.turn.eagerness;
    return e >= 0 && e <= 3 ? e : 0;
}

/* Silence that ends a turn (a finished one, with semantic_vad). */
static int end_silence_ms(const session *s)
{
    return s->cfg.turn.semantic ? s->a->s.turn_silence_ms[eager_index(s)] : s->cfg.turn.silence_duration_ms;
}

static void vad_params_from(const session *s, vad_params *p)
{
    vad_params_default(p);
    p->threshold = s->cfg.turn.threshold;
    p->prefix_padding_ms = s->cfg.turn.prefix_padding_ms;
    p->silence_duration_ms = end_silence_ms(s);
}

static turn *turn_of(session *s, const stage_call *c)
{
    for (turn *t = s->in.turns; t; t = t->next)
        if (t->stt == c || (t->stt_prev && t->stt_prev == c)) return t;
    return NULL;
}

/* a + " " + b (either may be NULL or empty); NULL on OOM. */
static char *join_text(const char *a, const char *b)
{
    if (a == NULL || *a == '\0') return strdup(b ? b : "");
    if (b == NULL || *b == '\0') return strdup(a);
    size_t la = strlen(a), lb = strlen(b);
    char *r = malloc(la + lb + 2);
    if (r == NULL) return NULL;
    memcpy(r, a, la);
    r[la] = ' ';
    memcpy(r + la + 1, b, lb + 1);
    return r;
}

static void add_heard(turn *t, const char *text)
{
    char *j = join_text(t->heard, text);
    if (j == NULL) return;
    free(t->heard);
    t->heard = j;
}

static int in_open(const session *s, const turn *t) { return s->in.open == t; }

/* Forget a turn (cancelling its STT call if still running). */
static void turn_drop(session *s, turn *t)
{
    input_state *in = &s->in;
    for (turn **pp = &in->turns; *pp; pp = &(*pp)->next)
        if (*pp == t) {
            *pp = t->next;
            break;
        }
    if (in->open == t) in->open = NULL;
    if (t->stt) {
        stage_cancel(t->stt);
        stage_release(t->stt);
    }
    if (t->stt_prev) {
        stage_cancel(t->stt_prev);
        stage_release(t->stt_prev);
    }
    free(t->partial);
    free(t->prev);
    free(t->heard);
    free(t->held_final);
    free(t);
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
    in->ring = malloc((in->ring_cap + RING_SLACK(in->ring_cap)) * sizeof *in->ring);
    return in->rs && in->vad && in->ring ? 0 : -1;
}

void input_free(session *s)
{
    input_state *in = &s->in;
    while (in->turns) turn_drop(s, in->turns);
    resampler_free(in->rs);
    vad_free(in->vad);
    free(in->ring);
    free(in->scratch);
    in->rs = NULL;
    in->vad = NULL;
    in->ring = NULL;
    in->scratch = NULL;
    in->ring_len = in->ring_cap = in->ring_off = in->scratch_cap = 0;
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

int input_transcribing(const session *s)
{
    for (const turn *t = s->in.turns; t; t = t->next)
        if (t->finishing) return 1;
    return 0;
}

static void ring_push(input_state *in, const int16_t *pcm, size_t n)
{
    if (n >= in->ring_cap) {
        memcpy(in->ring, pcm + n - in->ring_cap, in->ring_cap * sizeof *pcm);
        in->ring_off = 0;
        in->ring_len = in->ring_cap;
        return;
    }
    if (in->ring_off + in->ring_len + n > in->ring_cap + RING_SLACK(in->ring_cap)) {
        /* the end of the buffer: what is kept moves to the front */
        size_t keep = in->ring_len + n > in->ring_cap ? in->ring_cap - n : in->ring_len;
        memmove(in->ring, in->ring + in->ring_off + in->ring_len - keep, keep * sizeof *pcm);
        in->ring_off = 0;
        in->ring_len = keep;
    }
    memcpy(in->ring + in->ring_off + in->ring_len, pcm, n * sizeof *pcm);
    in->ring_len += n;
    if (in->ring_len > in->ring_cap) {
        in->ring_off += in->ring_len - in->ring_cap;
        in->ring_len = in->ring_cap;
    }
}

/* The oldest sample kept. */
static const int16_t *ring_data(const input_state *in) { return in->ring + in->ring_off; }

/* ------------------------------------------------------------ STT events */

/* Length of the longest common prefix of a and b that ends at a word
 * boundary in both. */
static size_t common_words(const char *a, const char *b)
{
    size_t i = 0, last = 0;
    while (a[i] && a[i] == b[i]) {
        i++;
        if ((a[i] == ' ' || a[i] == '\0') && (b[i] == ' ' || b[i] == '\0')) last = i;
    }
    return last;
}

/* Partial hypotheses may revise earlier words ("hello yeah" -> "hello how
 * are"), but transcription deltas can only append. A word is sent once two
 * consecutive hypotheses agree on everything up to it. */
static void stt_partial(void *user, stage_call *c, const char *hyp)
{
    session *s = user;
    turn *t = turn_of(s, c);
    /* After a pause the turn's transcript is what earlier streams heard
     * followed by this one's hypothesis. */
    if (t == NULL || c != t->stt || t->stt_prev) return;
    char *full = t->heard && *t->heard ? join_text(t->heard, hyp) : NULL;
    const char *text = full ? full : hyp;
    if (!s->cfg.transcription) {
        free(t->prev);
        t->prev = strdup(text);
        free(full);
        return;
    }
    const char *sent = t->partial ? t->partial : "";
    size_t sl = strlen(sent);
    size_t stable = t->prev ? common_words(text, t->prev) : 0;
    if (stable > sl && strncmp(text, sent, sl) == 0 && (sl == 0 || text[sl] == ' ')) {
        char *now = strndup(text, stable);
        if (now) {
            sess_send(s, proto_ev_transcription_delta(s->d, t->item_id, now + sl));
            free(t->partial);
            t->partial = now;
        }
    }
    free(t->prev);
    t->prev = strdup(text);
    free(full);
}

static void maybe_respond(session *s, int create)
{
    if (s->resp_waiting) {
        proto_client_event *ev = s->resp_wait;
        s->resp_waiting = 0;
        s->resp_wait = NULL;
        respond_start(s, ev);
        if (ev) {
            proto_client_event_free(ev);
            free(ev);
        }
        return;
    }
    if (create && s->resp == NULL) respond_start(s, NULL);
}

/* The turn's transcript is complete: the user item gets it, and the turn
 * is answered (a held speculative reply to the same text is released). */
static void turn_finalize(session *s, turn *t, const char *text)
{
    const char *model = t->model;
    item *it = conv_find(&s->conv, t->item_id);
    if (it) {
        conv_set_text(it, text);
        conv_touch(&s->conv, it);
        snprintf(it->status, sizeof it->status, "completed");
    }
    sess_trim_conversation(s);
    if (log_transcripts()) {
        log_info("stt transcript received", "session_id", s->id, "text", text, "model", model);
    } else {
        char words[16];
        snprintf(words, sizeof words, "%d", conv_words(text));
        log_info("stt transcript received", "session_id", s->id, "words", words, "model", model);
        log_debug("stt transcript", "session_id", s->id, "text", text);
    }
    recorder_note(s->rec, t->item_id, "user", "transcript", text);
    recorder_note(s->rec, t->item_id, "user", "stt", model);
    recorder_note_ms(s->rec, t->item_id, "user", "transcribed_ms", -1);
    recorder_provider(s->rec, "stt", model);
    if (s->cfg.transcription) sess_send(s, proto_ev_transcription_completed(s->d, t->item_id, text));
    if (it) {
        proto_item v = conv_view(it);
        sess_send(s, proto_ev_item_done(s->d, &v, it->prev ? it->prev->id : NULL));
    }
    sess_observe_words(1, conv_words(text));
    persist_save(s);
    int was_open = in_open(s, t);
    turn_drop(s, t);
    if (was_open) return; /* a final for a turn still being spoken (provider endpointing) */
    /* Answer once no earlier turn is pending and the user is not speaking
     * again; nothing heard (a cough, a door) gets no answer. */
    if (input_transcribing(s)) {
        if (respond_held(s)) respond_discard(s);
        return;
    }
    if (s->resp_waiting) {
        if (respond_held(s)) respond_discard(s);
        s->in.t_final_ns = sess_now_ns();
        maybe_respond(s, 0);
        s->in.t_final_ns = 0;
        return;
    }
    int create = s->cfg.turn.enabled && s->cfg.turn.create_response && text[0] != '\0' &&
                 s->in.open == NULL;
    if (respond_held(s)) {
        if (create && respond_release(s, text)) return;
        if (respond_held(s)) respond_discard(s);
    }
    s->in.t_final_ns = sess_now_ns();
    maybe_respond(s, create);
    s->in.t_final_ns = 0;
}

/* A pause gave the open turn's final transcript: reply to it now, held
 * until the turn is confirmed. */
static void speculate(session *s, turn *t)
{
    if (!s->a->s.turn_speculative || !s->cfg.turn.enabled || !s->cfg.turn.create_response) return;
    if (t->heard == NULL || t->heard[0] == '\0' || s->resp || s->resp_waiting || input_transcribing(s)) return;
    if (respond_speculate(s, t->heard) == 0)
        log_debug("speculative reply started", "session_id", s->id, "item_id", t->item_id);
}

static void end_of_speech(session *s, uint64_t end_pos);

/* The final of one of the turn's streams. */
static void stream_final(session *s, turn *t, const char *text)
{
    add_heard(t, text);
    if (t->early && in_open(s, t)) {
        /* finished at a pause and the turn goes on (for now) */
        stage_release(t->stt);
        t->stt = NULL;
        speculate(s, t);
        /* semantic_vad held the turn for want of a transcript (or on a
         * partial's word): a finished sentence ends it now */
        if (s->in.holding && s->cfg.turn.semantic && !sounds_unfinished(t->heard)) {
            log_debug("semantic turn detection: the final transcript sounds finished", "session_id", s->id);
            end_of_speech(s, s->in.hold_end_pos);
        }
        return;
    }
    char *all = strdup(t->heard ? t->heard : "");
    if (all == NULL) return;
    turn_finalize(s, t, all);
    free(all);
}

static void stt_final(void *user, stage_call *c, const char *text, float conf)
{
    session *s = user;
    turn *t = turn_of(s, c);
    (void)conf;
    if (t == NULL) return;
    snprintf(t->model, sizeof t->model, "%s", stage_call_model(c));
    if (c == t->stt_prev) {
        /* the stream finished at an earlier pause: its words come first */
        add_heard(t, text);
        stage_release(t->stt_prev);
        t->stt_prev = NULL;
        if (t->held_final) {
            char *f = t->held_final;
            t->held_final = NULL;
            stream_final(s, t, f);
            free(f);
        }
        return;
    }
    if (t->stt_prev) {
        free(t->held_final);
        t->held_final = strdup(text);
        return;
    }
    stream_final(s, t, text);
}

static void stt_error(void *user, stage_call *c, const vx_error *err)
{
    session *s = user;
    turn *t = turn_of(s, c);
    if (t == NULL) return;
    log_warn("transcription failed", "session_id", s->id, "error", err->msg);
    proto_error e;
    memset(&e, 0, sizeof e);
    snprintf(e.type, sizeof e.type, "server_error");
    snprintf(e.code, sizeof e.code, "transcription_failed");
    snprintf(e.message, sizeof e.message, "speech recognition failed: %.200s", err->msg);
    sess_send(s, proto_ev_transcription_failed(s->d, t->item_id, &e));
    item *it = conv_find(&s->conv, t->item_id);
    if (it) snprintf(it->status, sizeof it->status, "incomplete");
    recorder_note(s->rec, t->item_id, "user", "status", "transcription_failed");
    recorder_note(s->rec, t->item_id, "user", "error", err->msg);
    if (respond_held(s)) respond_discard(s);
    turn_drop(s, t);
    if (s->resp_waiting && !input_transcribing(s)) maybe_respond(s, 0);
}

/* The provider failed before its final and the next one hears the
 * utterance again: its partials start over. Deltas already sent stay sent
 * (the completed transcript is what counts); new ones follow only where the
 * next provider's hypothesis extends them. */
static void stt_reset(void *user, stage_call *c)
{
    session *s = user;
    turn *t = turn_of(s, c);
    if (t == NULL || c != t->stt) return;
    free(t->prev);
    t->prev = NULL;
}

static const stage_events stt_events_tmpl = {
    .on_partial = stt_partial,
    .on_final = stt_final,
    .on_error = stt_error,
    .on_reset = stt_reset,
};

/* Open the STT stream of a new user turn; false if no provider. */
static int open_turn(session *s)
{
    input_state *in = &s->in;
    stage_events ev = stt_events_tmpl;
    ev.user = s;
    if (in->open) turn_drop(s, in->open); /* never finished: replace it */
    turn *t = calloc(1, sizeof *t);
    if (t == NULL) return 0;
    proto_new_id("item_", t->item_id, sizeof t->item_id);
    t->stt = stage_stt_open(s->sx, stt_rate(s), &ev);
    if (t->stt == NULL) {
        free(t);
        sess_error(s, "server_error", "no_stt_provider", "no speech-to-text provider is available", NULL, NULL);
        return 0;
    }
    t->next = in->turns;
    in->turns = t;
    in->open = t;
    return 1;
}

/* The user turn's audio is complete: commit the item, finish STT. */
static void close_turn(session *s)
{
    input_state *in = &s->in;
    turn *t = in->open;
    if (t == NULL) return;
    in->open = NULL;
    in->t_speech_end_ns = sess_now_ns();
    char prev_id[40] = "";
    if (s->conv.tail) snprintf(prev_id, sizeof prev_id, "%s", s->conv.tail->id);
    sess_send(s, proto_ev_audio_committed(s->d, t->item_id, prev_id[0] ? prev_id : NULL));
    item *it = conv_add(&s->conv, NULL, t->item_id, "user", PROTO_INPUT_AUDIO, NULL, "in_progress");
    if (it) {
        proto_item v = conv_view(it);
        sess_send(s, proto_ev_item_added(s->d, &v, prev_id[0] ? prev_id : NULL));
    }
    t->finishing = 1;
    recorder_note_ms(s->rec, t->item_id, "user", "committed_ms", -1);
    if (t->stt == NULL && t->stt_prev == NULL) {
        /* a pause already gave the final transcript */
        char *all = strdup(t->heard ? t->heard : "");
        if (all) turn_finalize(s, t, all);
        free(all);
        return;
    }
    if (t->stt && !t->early) stage_stt_finish(t->stt);
}

/* The user goes on after a pause whose stream was finished early: a held
 * reply is dropped and a new stream hears the rest (from the prefix
 * padding before now, within the pause). */
static void turn_resume(session *s, turn *t)
{
    input_state *in = &s->in;
    if (respond_held(s)) respond_discard(s);
    t->stt_prev = t->stt; /* its final is not in yet, or NULL */
    t->early = 0;
    free(t->prev);
    t->prev = NULL;
    stage_events ev = stt_events_tmpl;
    ev.user = s;
    t->stt = stage_stt_open(s->sx, stt_rate(s), &ev);
    log_debug("speech resumed after a pause: a new stream hears the rest", "session_id", s->id);
    if (t->stt == NULL) {
        turn_drop(s, t);
        in->in_speech = 0;
        in->holding = 0;
        sess_error(s, "server_error", "no_stt_provider", "no speech-to-text provider is available", NULL, NULL);
        return;
    }
    uint64_t pad = (uint64_t)s->cfg.turn.prefix_padding_ms * (uint64_t)stt_rate(s) / 1000;
    uint64_t ring_start = in->pos - in->ring_len;
    uint64_t from = in->pos > pad ? in->pos - pad : 0;
    if (from < t->early_pos) from = t->early_pos;
    if (from < ring_start) from = ring_start;
    stage_stt_feed(t->stt, ring_data(in) + (from - ring_start), (size_t)(in->pos - from));
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


/* The user's turn ended at STT-rate position end_pos. */
static void end_of_speech(session *s, uint64_t end_pos)
{
    input_state *in = &s->in;
    in->in_speech = 0;
    in->holding = 0;
    if (in->open) {
        sess_send(s, proto_ev_speech_stopped(s->d, ms_of(s, end_pos), in->open->item_id));
        recorder_note_ms(s->rec, in->open->item_id, "user", "speech_stopped_ms", rec_ms_of(s, end_pos));
    }
    close_turn(s);
}

void input_tick(session *s)
{
    input_state *in = &s->in;
    if (in->holding && in->in_speech && sess_now_ns() >= in->hold_deadline_ns) end_of_speech(s, in->hold_end_pos);
}

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

    int resumed = 0;
    if (v.start && in->holding) {
        in->holding = 0; /* the user went on: the same turn continues */
        log_debug("semantic turn detection: speech resumed within the hold", "session_id", s->id);
        if (in->open && in->open->early) {
            turn_resume(s, in->open);
            resumed = 1;
        }
    } else if (in->in_speech && !in->holding && in->open && in->open->early && vad_in_speech(in->vad) &&
               vad_silence_ms(in->vad) == 0) {
        turn_resume(s, in->open); /* speech again before the turn ended */
        resumed = 1;
    }
    if (v.start && !in->in_speech) {
        in->in_speech = 1;
        in->speech_start_pos = v.start_pos;
        if (open_turn(s)) {
            sess_send(s, proto_ev_speech_started(s->d, ms_of(s, v.start_pos), in->open->item_id));
            recorder_note_ms(s->rec, in->open->item_id, "user", "speech_started_ms", rec_ms_of(s, v.start_pos));
            if (respond_held(s)) respond_discard(s); /* the turn it answers is not over */
            if (s->resp && s->cfg.turn.interrupt_response) respond_cancel(s, "turn_detected");
            /* Feed from prefix_padding before the start, out of the ring. */
            uint64_t pad = (uint64_t)s->cfg.turn.prefix_padding_ms * (uint64_t)stt_rate(s) / 1000;
            uint64_t from = v.start_pos > pad ? v.start_pos - pad : 0;
            uint64_t ring_start = in->pos - in->ring_len;
            if (from < ring_start) from = ring_start;
            stage_stt_feed(in->open->stt, ring_data(in) + (from - ring_start), (size_t)(in->pos - from));
        } else {
            in->in_speech = 0;
        }
    } else if (in->in_speech && in->open && !resumed && !in->open->early && in->open->stt) {
        stage_stt_feed(in->open->stt, pcm, n);
    }
    (void)block_start;
    /* A pause of min_silence in a turn that is still open: ask the
     * recognizer for its final now, so that a reply can be made from it
     * while the silence that ends the turn runs. */
    turn *o = in->open;
    if (o && o->stt && !o->early && !o->stt_prev && in->in_speech && !in->holding && s->a->s.turn_speculative &&
        s->cfg.turn.create_response && s->a->s.turn_min_silence_ms < end_silence_ms(s) &&
        vad_silence_ms(in->vad) >= s->a->s.turn_min_silence_ms) {
        o->early = 1;
        o->early_pos = in->pos;
        stage_stt_finish(o->stt);
    }
    if (v.end && in->in_speech && s->cfg.turn.semantic && in->open) {
        turn *t = in->open;
        /* The final asked for at the pause decides once it is in; until
         * then the turn is held as if unfinished. */
        int pending = t->early && t->stt != NULL;
        const char *hyp = t->early && t->stt == NULL ? t->heard : t->prev ? t->prev : t->partial;
        if (pending || sounds_unfinished(hyp)) {
            int hold = s->a->s.turn_hold_ms[eager_index(s)];
            in->holding = 1;
            in->hold_end_pos = v.end_pos;
            in->hold_until = v.end_pos + (uint64_t)hold * (uint64_t)stt_rate(s) / 1000;
            in->hold_deadline_ns = sess_now_ns() + (uint64_t)(hold + 300) * 1000000ull;
            sess_schedule_tick(s, (uint32_t)hold + 300);
            log_debug("semantic turn detection: unfinished sentence, holding the turn", "session_id", s->id,
                      "hypothesis", hyp);
            v.end = 0;
        }
    }
    if (in->holding && in->pos >= in->hold_until) {
        v.end = 1;
        v.end_pos = in->hold_end_pos;
    }
    if (v.end && in->in_speech) end_of_speech(s, v.end_pos);
}

void input_append(session *s, const int16_t *pcm, size_t n)
{
    input_state *in = &s->in;
    if (in->rs == NULL || n == 0) return;
    recorder_user_audio(s->rec, pcm, n, s->cfg.input_rate);
    size_t cap = resampler_out_capacity(in->rs, n);
    if (cap > in->scratch_cap) {
        int16_t *nb = realloc(in->scratch, cap * sizeof *nb);
        if (nb == NULL) return;
        in->scratch = nb;
        in->scratch_cap = cap;
    }
    size_t got = resampler_process(in->rs, pcm, n, in->scratch, in->scratch_cap);
    in->append_end = in->pos + got;
    if (!s->cfg.turn.enabled) {
        /* Manual: everything appended belongs to the next commit. */
        if (!in->buffered) {
            in->buffered = 1;
            if (!open_turn(s)) return;
            recorder_note_ms(s->rec, in->open->item_id, "user", "speech_started_ms", rec_ms_of(s, in->pos));
        }
        in->pos += got;
        if (in->open) stage_stt_feed(in->open->stt, in->scratch, got);
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
        in->holding = 0;
        vad_reset(in->vad);
        in->vad_base = in->pos;
        close_turn(s);
        return;
    }
    if (!in->buffered) {
        sess_error(s, "invalid_request_error", "input_audio_buffer_commit_empty",
                   "the input audio buffer is empty: append audio before committing", NULL, event_id);
        return;
    }
    in->buffered = 0;
    if (in->open == NULL) {
        sess_error(s, "server_error", "no_stt_provider", "no speech-to-text provider is available", NULL, event_id);
        return;
    }
    close_turn(s);
}

void input_clear(session *s)
{
    input_state *in = &s->in;
    if (respond_held(s)) respond_discard(s);
    if (in->open) turn_drop(s, in->open); /* turns already committed go on */
    in->buffered = 0;
    in->in_speech = 0;
    in->holding = 0;
    in->ring_len = in->ring_off = 0;
    if (in->vad) vad_reset(in->vad);
    in->vad_base = in->pos;
    if (in->rs) resampler_reset(in->rs);
}
