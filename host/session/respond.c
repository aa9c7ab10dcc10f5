/*
 * Responses: LLM tokens -> sentences -> TTS -> paced audio to the client.
 *
 * The LLM streams tokens; the chunker cuts them into sentences; sentences
 * are synthesized one after another while the LLM is still talking. Audio
 * is resampled to the client's output rate and released at real time plus
 * [session] audio_lead, so that a barge-in stops the bot at once and the
 * conversation records only what the client actually received: whole
 * sentences, and the share of the interrupted one that was sent.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/chunker.h"
#include "net/http.h"
#include "base/log.h"
#include "session/persist.h"
#include "recording/recorder.h"
#include "pipeline/resample.h"
#include "session/session_int.h"
#include "pipeline/stage.h"

/* Paced output wakes every third of [session] audio_lead (20..100 ms): the
 * client then holds between 2/3 of the lead and the lead, and a session
 * costs 10 wake-ups and deltas per second of reply at the default 300 ms,
 * not 50. */
#define TICK_MIN_MS 20
#define TICK_MAX_MS 100
#define MAX_DELTA_MS 200 /* audio per delta event */

/* ------------------------------------------------------------ helpers */

static int append_text(response *r, const char *t, size_t n)
{
    if (r->text_len + n + 1 > r->text_cap) {
        size_t cap = r->text_cap ? r->text_cap : 256;
        while (cap < r->text_len + n + 1) cap *= 2;
        char *nb = realloc(r->text, cap);
        if (nb == NULL) return -1;
        r->text = nb;
        r->text_cap = cap;
    }
    memcpy(r->text + r->text_len, t, n);
    r->text_len += n;
    r->text[r->text_len] = '\0';
    return 0;
}

static proto_pos pos_of(const response *r)
{
    proto_pos p = {r->id, r->it->id, r->msg_index};
    return p;
}

/* The message item enters the output (first text or audio, or the end of a
 * response that produced nothing else). */
static void announce(session *s, response *r)
{
    if (r->announced) return;
    r->announced = 1;
    r->msg_index = r->n_out++;
    proto_item v = conv_view(r->it);
    sess_send(s, proto_ev_output_item(s->d, 0, r->id, r->msg_index, &v));
    if (!r->out_of_band) sess_send(s, proto_ev_item_added(s->d, &v, r->it->prev ? r->it->prev->id : NULL));
    sess_send(s, proto_ev_content_part(s->d, 0, r->id, r->msg_index, &v));
}

/* A tool call's arguments are complete (or, cut short, incomplete). */
static void finish_call(session *s, response *r, struct rcall *k, const char *status)
{
    k->done = 1;
    snprintf(k->it->status, sizeof k->it->status, "%s", status);
    proto_pos p = {r->id, k->it->id, k->output_index};
    proto_item v = conv_view(k->it);
    sess_send(s, proto_ev_function_args_done(s->d, &p, k->it->call_id, k->it->name, k->it->text));
    sess_send(s, proto_ev_output_item(s->d, 1, r->id, k->output_index, &v));
    if (!r->out_of_band) sess_send(s, proto_ev_item_done(s->d, &v, k->it->prev ? k->it->prev->id : NULL));
    recorder_note(s->rec, k->it->id, "assistant", "type", "function_call");
    recorder_note(s->rec, k->it->id, "assistant", "call_id", k->it->call_id);
    recorder_note(s->rec, k->it->id, "assistant", "name", k->it->name);
    recorder_note(s->rec, k->it->id, "assistant", "arguments", k->it->text);
    recorder_note(s->rec, k->it->id, "assistant", "response_id", r->id);
    log_info("tool call", "session_id", s->id, "response_id", r->id, "call_id", k->it->call_id, "name",
             k->it->name ? k->it->name : "", "status", status);
}

void respond_free(response *r)
{
    if (r == NULL) return;
    if (r->llm) {
        stage_cancel(r->llm);
        stage_release(r->llm);
    }
    if (r->tts) {
        stage_cancel(r->tts);
        stage_release(r->tts);
    }
    sentence *st = r->sent_head;
    while (st) {
        sentence *n = st->next;
        free(st->text);
        free(st);
        st = n;
    }
    chunker_free(r->ch);
    if (r->out_of_band) {
        conv_item_free(r->it);
        for (int i = 0; i < r->n_calls; i++) conv_item_free(r->calls[i].it);
    }
    free(r->metadata_json);
    free(r->voice);
    resampler_free(r->out_rs);
    free(r->q);
    free(r->segs);
    free(r->text);
    free(r->instructions);
    free(r->held_text);
    free(r);
}

/* Text the client heard: whole sentences, and the share of the interrupted
 * one that was sent (by words, in proportion to its audio sent). */
static char *spoken_text(const response *r)
{
    size_t cap = r->text_len + 2, len = 0;
    char *out = malloc(cap);
    if (out == NULL) return NULL;
    out[0] = '\0';
    for (const sentence *st = r->sent_head; st; st = st->next) {
        if (st->samples_sent == 0) break;
        const char *t = st->text;
        size_t take = strlen(t);
        if (!(st->tts_done && st->samples_sent >= st->samples_total)) {
            int words = 0;
            for (const char *p = t; *p;) {
                while (*p && isspace((unsigned char)*p)) p++;
                if (!*p) break;
                words++;
                while (*p && !isspace((unsigned char)*p)) p++;
            }
            double share = st->samples_total ? (double)st->samples_sent / (double)st->samples_total : 0;
            int keep = (int)(share * words + 0.5);
            const char *p = t;
            for (int w = 0; w < keep && *p; w++) {
                while (*p && isspace((unsigned char)*p)) p++;
                while (*p && !isspace((unsigned char)*p)) p++;
            }
            take = (size_t)(p - t);
        }
        if (take == 0) break;
        if (len + take + 2 > cap) break;
        if (len) out[len++] = ' ';
        memcpy(out + len, t, take);
        len += take;
        out[len] = '\0';
        if (take < strlen(t)) break;
    }
    return out;
}

static void trim(char *t)
{
    size_t n = strlen(t), a = 0;
    while (a < n && isspace((unsigned char)t[a])) a++;
    while (n > a && isspace((unsigned char)t[n - 1])) n--;
    memmove(t, t + a, n - a);
    t[n - a] = '\0';
}

/* The response object as the events show it. */
static void response_view(const session *s, const response *r, proto_response *pr, const char *status)
{
    memset(pr, 0, sizeof *pr);
    pr->id = r->id;
    pr->status = status;
    pr->modalities = r->modalities;
    pr->voice = r->voice ? r->voice : s->cfg.voice;
    pr->output_rate = s->cfg.output_rate;
    pr->metadata_json = r->metadata_json;
    pr->conversation_id = r->out_of_band ? NULL : s->conv_id;
    pr->max_output_tokens = r->max_output_tokens;
}

/* ------------------------------------------------------------ finishing */

static void finish(session *s, const char *status, const char *reason, const proto_error *err)
{
    response *r = s->resp;
    if (r == NULL) return;
    if (r->held) {
        /* nothing of it was sent: a normal reply follows if the turn ends */
        respond_discard(s);
        return;
    }
    s->resp = NULL;
    if (r->llm) {
        stage_cancel(r->llm);
        stage_release(r->llm);
        r->llm = NULL;
    }
    if (r->tts) {
        stage_cancel(r->tts);
        stage_release(r->tts);
        r->tts = NULL;
    }
    for (int i = 0; i < r->n_calls; i++)
        if (!r->calls[i].done) finish_call(s, r, &r->calls[i], "incomplete");
    /* A response that only called tools has no message item. */
    int with_message = r->announced || r->n_calls == 0;
    if (with_message) announce(s, r);
    int audio = (r->modalities & PROTO_MOD_AUDIO) != 0;
    char *said;
    if (audio && strcmp(status, "completed") != 0) said = spoken_text(r);
    else said = strdup(r->text ? r->text : "");
    if (said == NULL) said = strdup("");
    if (said) trim(said);
    conv_set_text(r->it, said ? said : "");
    if (!r->out_of_band) conv_touch(&s->conv, r->it);
    if (s->cfg.output_rate > 0)
        r->it->audio_ms = (int)(r->samples_released * 1000 / (uint64_t)s->cfg.output_rate);
    snprintf(r->it->status, sizeof r->it->status, "%s", strcmp(status, "completed") == 0 ? "completed" : "incomplete");

    proto_pos p = pos_of(r);
    if (!s->closed) {
        proto_item out[17];
        int n_out = 0;
        if (with_message) {
            if (audio) {
                sess_send(s, proto_ev_audio_done(s->d, &p));
                sess_send(s, proto_ev_transcript_done(s->d, &p, r->it->text));
            } else {
                sess_send(s, proto_ev_text_done(s->d, &p, r->it->text));
            }
            proto_item v = conv_view(r->it);
            sess_send(s, proto_ev_content_part(s->d, 1, r->id, r->msg_index, &v));
            sess_send(s, proto_ev_output_item(s->d, 1, r->id, r->msg_index, &v));
            if (!r->out_of_band) sess_send(s, proto_ev_item_done(s->d, &v, r->it->prev ? r->it->prev->id : NULL));
        }
        /* response.done lists the items by output_index. */
        for (int idx = 0; idx < r->n_out && n_out < 17; idx++) {
            if (with_message && idx == r->msg_index) out[n_out++] = conv_view(r->it);
            for (int i = 0; i < r->n_calls; i++)
                if (r->calls[i].output_index == idx) out[n_out++] = conv_view(r->calls[i].it);
        }
        proto_response pr;
        response_view(s, r, &pr, status);
        pr.status_reason = reason;
        pr.error = err;
        pr.output = out;
        pr.n_output = (size_t)n_out;
        pr.usage = r->has_usage ? &r->usage : NULL;
        sess_send(s, proto_ev_response(s->d, 1, &pr));
    }
    if (with_message) {
        sess_observe_words(0, conv_words(r->it->text));
        recorder_note(s->rec, r->it->id, "assistant", "status", status);
        if (reason) recorder_note(s->rec, r->it->id, "assistant", "reason", reason);
        recorder_note(s->rec, r->it->id, "assistant", "text", r->it->text);
        recorder_note_ms(s->rec, r->it->id, "assistant", "done_ms", -1);
        if (audio) recorder_note_ms(s->rec, r->it->id, "assistant", "audio_ms", r->it->audio_ms);
        if (err) recorder_note(s->rec, r->it->id, "assistant", "error", err->message);
    }
    char calls[16];
    snprintf(calls, sizeof calls, "%d", r->n_calls);
    char words[16];
    snprintf(words, sizeof words, "%d", conv_words(r->it->text));
    log_info("response done", "session_id", s->id, "response_id", r->id, "status", status,
             "reason", reason ? reason : "", log_transcripts() ? "text" : "words",
             log_transcripts() ? (r->it->text ? r->it->text : "") : words, "tool_calls", calls);
    if (!log_transcripts()) log_debug("response text", "session_id", s->id, "response_id", r->id, "text", r->it->text);
    if (!with_message && !r->out_of_band) {
        conv_remove(&s->conv, r->it); /* never announced: the conversation never had it */
        r->it = NULL;
    }
    free(said);
    respond_free(r);
    sess_trim_conversation(s);
    persist_save(s);
}

/* Complete when the LLM is done and every sentence was spoken and sent. */
static void maybe_complete(session *s)
{
    response *r = s->resp;
    if (r == NULL || !r->llm_done || r->held) return;
    if (r->modalities & PROTO_MOD_AUDIO) {
        if (r->tts || r->q_len) return;
        if (!r->stopped)
            for (sentence *st = r->sent_head; st; st = st->next)
                if (!st->tts_done) return;
    }
    if (r->stopped) {
        if (r->stop_timeout) http_count_realtime_timeout();
        log_warn("response cut short by a provider failure", "session_id", s->id, "response_id", r->id,
                 "reason", r->stop_reason, "error", r->stop_err.message);
        proto_error e = r->stop_err;
        char reason[sizeof r->stop_reason];
        snprintf(reason, sizeof reason, "%s", r->stop_reason);
        finish(s, "incomplete", reason, &e);
    } else if (r->max_output_tokens > 0 && r->has_usage && r->usage.output_tokens >= r->max_output_tokens)
        finish(s, "incomplete", "max_output_tokens", NULL); /* the provider stopped at the limit */
    else
        finish(s, "completed", NULL, NULL);
}

static void fail(session *s, const char *code, const vx_error *verr)
{
    if (s->resp && s->resp->held) {
        respond_discard(s);
        return;
    }
    if (verr && verr->code == VX_ETIMEDOUT) http_count_realtime_timeout();
    proto_error e;
    memset(&e, 0, sizeof e);
    snprintf(e.type, sizeof e.type, "server_error");
    snprintf(e.code, sizeof e.code, "%s", code);
    snprintf(e.message, sizeof e.message, "%s", verr ? verr->msg : "provider failed");
    log_warn("response failed", "session_id", s->id, "code", code, "error", e.message);
    finish(s, "failed", NULL, &e);
}

/* A provider failed after output reached the client (`stage` names it).
 * Nothing more is made: the LLM and the sentence being synthesized stop,
 * audio already queued still plays (it was made for what was said so far),
 * then the response ends incomplete. What was said stays in the
 * conversation. */
static void stop_early(session *s, const char *stage, const vx_error *verr)
{
    response *r = s->resp;
    if (r == NULL || r->stopped) return;
    r->stopped = 1;
    r->stop_timeout = verr->code == VX_ETIMEDOUT;
    snprintf(r->stop_reason, sizeof r->stop_reason, "%s_%s", stage, r->stop_timeout ? "timeout" : "error");
    snprintf(r->stop_err.type, sizeof r->stop_err.type, "server_error");
    snprintf(r->stop_err.code, sizeof r->stop_err.code, "%s_failed", stage);
    snprintf(r->stop_err.message, sizeof r->stop_err.message, "%s", verr->msg);
    if (r->llm) {
        stage_cancel(r->llm);
        stage_release(r->llm);
        r->llm = NULL;
    }
    if (!r->llm_done) {
        r->llm_done = 1;
        /* No usage from a provider that stopped: count words instead. */
        r->usage.input_tokens = r->prompt_words;
        r->usage.output_tokens = conv_words(r->text);
        r->has_usage = 1;
    }
    chunker_reset(r->ch); /* an unfinished sentence is not spoken */
    if (r->tts) {
        stage_cancel(r->tts);
        stage_release(r->tts);
        r->tts = NULL;
    }
    r->tts_sent = NULL;
    maybe_complete(s);
}

/* ------------------------------------------------------------ TTS */

static void kick_tts(session *s);
static int check_pending_fail(session *s);

static int queue_audio(response *r, sentence *st, const int16_t *pcm, size_t n)
{
    if (r->q_len + n > r->q_cap) {
        size_t cap = r->q_cap ? r->q_cap : 48000;
        while (cap < r->q_len + n) cap *= 2;
        int16_t *nb = realloc(r->q, cap * sizeof *nb);
        if (nb == NULL) return -1;
        r->q = nb;
        r->q_cap = cap;
    }
    memcpy(r->q + r->q_len, pcm, n * sizeof *pcm);
    r->q_len += n;
    if (r->n_segs && r->segs[r->n_segs - 1].s == st) {
        r->segs[r->n_segs - 1].n += n;
    } else {
        if (r->n_segs == r->cap_segs) {
            size_t cap = r->cap_segs ? r->cap_segs * 2 : 16;
            struct qseg *ns = realloc(r->segs, cap * sizeof *ns);
            if (ns == NULL) return -1;
            r->segs = ns;
            r->cap_segs = cap;
        }
        r->segs[r->n_segs].s = st;
        r->segs[r->n_segs].n = n;
        r->n_segs++;
    }
    st->samples_total += n;
    return 0;
}

static void tts_audio(void *user, stage_call *c, const int16_t *pcm, size_t n, const vx_audio_format *fmt)
{
    session *s = user;
    response *r = s->resp;
    if (r == NULL || c != r->tts || r->tts_sent == NULL) return;
    int rate = (int)(fmt->sample_rate ? fmt->sample_rate : 16000);
    if (r->out_rs == NULL || r->out_src_rate != rate) {
        resampler_free(r->out_rs);
        r->out_rs = resampler_new(rate, s->cfg.output_rate, 5);
        r->out_src_rate = rate;
        if (r->out_rs == NULL) return;
    }
    size_t cap = resampler_out_capacity(r->out_rs, n);
    int16_t *tmp = malloc(cap * sizeof *tmp);
    if (tmp == NULL) return;
    size_t got = resampler_process(r->out_rs, pcm, n, tmp, cap);
    queue_audio(r, r->tts_sent, tmp, got);
    free(tmp);
    if (!r->audio_started) {
        r->audio_started = 1;
        r->t_audio_start_ns = sess_now_ns();
        r->t_first_chunk_ns = r->t_audio_start_ns;
        snprintf(r->tts_model, sizeof r->tts_model, "%s", stage_call_model(c));
        if (!r->held) recorder_note(s->rec, r->it->id, "assistant", "tts", stage_call_model(c));
    }
    if (!r->held) recorder_provider(s->rec, "tts", stage_call_model(c));
    respond_tick(s);
}

static void tts_done(void *user, stage_call *c, const vx_usage *u)
{
    session *s = user;
    response *r = s->resp;
    (void)u;
    if (r == NULL || c != r->tts) return;
    if (r->out_rs && r->tts_sent) {
        int16_t tail[2048];
        size_t got = resampler_flush(r->out_rs, tail, sizeof tail / sizeof tail[0]);
        if (got) queue_audio(r, r->tts_sent, tail, got);
    }
    if (r->tts_sent) r->tts_sent->tts_done = 1;
    r->tts_sent = NULL;
    stage_release(r->tts);
    r->tts = NULL;
    kick_tts(s);
    if (check_pending_fail(s)) return;
    respond_tick(s);
    maybe_complete(s);
}

static void tts_error(void *user, stage_call *c, const vx_error *err)
{
    session *s = user;
    response *r = s->resp;
    if (r == NULL || c != r->tts) return;
    if (r->samples_released > 0) stop_early(s, "tts", err); /* the client heard part of it */
    else fail(s, "tts_failed", err);
}

/* The TTS provider failed before its audio was released: drop what it
 * queued for the sentence; the next attempt speaks the sentence again. */
static void tts_reset(void *user, stage_call *c)
{
    session *s = user;
    response *r = s->resp;
    if (r == NULL || c != r->tts || r->tts_sent == NULL) return;
    sentence *st = r->tts_sent;
    while (r->n_segs && r->segs[r->n_segs - 1].s == st) {
        r->q_len -= r->segs[r->n_segs - 1].n;
        r->n_segs--;
    }
    st->samples_total = 0;
    resampler_free(r->out_rs); /* its state belongs to the dropped stream */
    r->out_rs = NULL;
    r->out_src_rate = 0;
    if (r->samples_released == 0) r->audio_started = 0;
}

static void kick_tts(session *s)
{
    response *r = s->resp;
    if (r == NULL || r->tts || r->stopped) return;
    sentence *st = r->sent_head;
    while (st && st->tts_done) st = st->next;
    if (st == NULL) return;
    stage_events ev = {.user = s, .on_audio = tts_audio, .on_done = tts_done, .on_error = tts_error,
                       .on_reset = tts_reset};
    r->tts_sent = st;
    if (!r->host_tts_seen && st == r->sent_head && r->t_first_sentence_ns) {
        r->host_tts_seen = 1;
        sess_observe_host(HOST_SENTENCE_TO_TTS, sess_now_ns() - r->t_first_sentence_ns);
    }
    r->tts = stage_tts_synthesize(s->sx, st->text, r->voice ? r->voice : s->cfg.voice, &ev);
    /* Failing here could free the chunker that called us: flag it. */
    if (r->tts == NULL) r->pending_fail = 1;
}

/* Act on a TTS start failure flagged inside a callback chain. */
static int check_pending_fail(session *s)
{
    if (s->resp == NULL || !s->resp->pending_fail) return 0;
    vx_error e = {VX_ENOMEM, 0, 0, "could not start speech synthesis"};
    fail(s, "tts_failed", &e);
    return 1;
}

static void on_sentence(void *user, const char *piece)
{
    session *s = user;
    response *r = s->resp;
    if (r == NULL) return;
    sentence *st = calloc(1, sizeof *st);
    if (st == NULL || (st->text = strdup(piece)) == NULL) {
        free(st);
        return;
    }
    if (r->sent_tail) r->sent_tail->next = st;
    else r->sent_head = st;
    if (r->t_first_sentence_ns == 0) r->t_first_sentence_ns = sess_now_ns();
    r->sent_tail = st;
    kick_tts(s);
}

/* ------------------------------------------------------------ LLM */

/* LLM output reached the client: a failure from now on ends the response
 * rather than asking another provider. */
static void commit_llm(response *r)
{
    if (r->llm_committed || r->llm == NULL) return;
    r->llm_committed = 1;
    stage_commit(r->llm);
}

static void llm_token(void *user, stage_call *c, const char *text, size_t len)
{
    session *s = user;
    response *r = s->resp;
    if (r == NULL || c != r->llm) return;
    if (len > 0 && !r->held) announce(s, r);
    if (r->text_len == 0) snprintf(r->llm_first_model, sizeof r->llm_first_model, "%s", stage_call_model(c));
    if (r->text_len == 0 && !r->held) {
        recorder_note(s->rec, r->it->id, "assistant", "llm", stage_call_model(c));
        recorder_note_ms(s->rec, r->it->id, "assistant", "first_token_ms", -1);
        recorder_provider(s->rec, "llm", stage_call_model(c));
    }
    append_text(r, text, len);
    if (r->modalities & PROTO_MOD_AUDIO) {
        chunker_push(r->ch, text, len, on_sentence, s);
        check_pending_fail(s);
    } else {
        char *d = strndup(text, len);
        proto_pos p = pos_of(r);
        if (d) sess_send(s, proto_ev_text_delta(s->d, &p, d));
        free(d);
        if (len > 0) commit_llm(r);
    }
}

static void llm_tool_call(void *user, stage_call *c, uint32_t index, const char *call_id, const char *name,
                          const char *args, size_t len)
{
    session *s = user;
    response *r = s->resp;
    if (r == NULL || c != r->llm) return;
    if (r->held) {
        respond_discard(s); /* a speculative reply is plain speech only */
        return;
    }
    struct rcall *k = NULL;
    for (int i = 0; i < r->n_calls; i++)
        if (r->calls[i].index == index) k = &r->calls[i];
    if (k == NULL) {
        if (r->n_calls == (int)(sizeof r->calls / sizeof r->calls[0])) return; /* more calls than we keep */
        char cid[72];
        if (call_id && *call_id) snprintf(cid, sizeof cid, "%s", call_id);
        else proto_new_id("call_", cid, sizeof cid);
        item *it;
        if (r->out_of_band) {
            it = conv_detached("assistant", PROTO_OUTPUT_TEXT);
            if (it) {
                snprintf(it->type, sizeof it->type, "function_call");
                snprintf(it->call_id, sizeof it->call_id, "%s", cid);
                it->name = strdup(name ? name : "");
                it->text = strdup("");
            }
        } else {
            /* Before the message item while that is not announced, so that
             * previous_item_id always names an item the client knows. */
            item *after = r->announced ? NULL : r->it->prev ? r->it->prev : CONV_AT_HEAD;
            it = conv_add_function(&s->conv, after, NULL, "function_call", cid, name ? name : "", "", "in_progress");
        }
        if (it == NULL) return;
        k = &r->calls[r->n_calls++];
        k->index = index;
        k->it = it;
        k->output_index = r->n_out++;
        commit_llm(r);
        proto_item v = conv_view(it);
        sess_send(s, proto_ev_output_item(s->d, 0, r->id, k->output_index, &v));
        if (!r->out_of_band) sess_send(s, proto_ev_item_added(s->d, &v, it->prev ? it->prev->id : NULL));
        recorder_provider(s->rec, "llm", stage_call_model(c));
    }
    if (len > 0 && !k->done) {
        size_t have = k->it->text ? strlen(k->it->text) : 0;
        char *t = realloc(k->it->text, have + len + 1);
        if (t == NULL) return;
        memcpy(t + have, args, len);
        t[have + len] = '\0';
        k->it->text = t;
        if (!r->out_of_band) conv_touch(&s->conv, k->it);
        char *d = strndup(args, len);
        proto_pos p = {r->id, k->it->id, k->output_index};
        if (d) sess_send(s, proto_ev_function_args_delta(s->d, &p, k->it->call_id, d));
        free(d);
    }
}

static void llm_done(void *user, stage_call *c, const vx_usage *u)
{
    session *s = user;
    response *r = s->resp;
    if (r == NULL || c != r->llm) return;
    for (int i = 0; i < r->n_calls; i++)
        if (!r->calls[i].done) finish_call(s, r, &r->calls[i], "completed");
    snprintf(r->llm_model, sizeof r->llm_model, "%s", stage_call_model(c));
    if (u) {
        r->usage.input_tokens = (int)u->prompt_tokens;
        r->usage.output_tokens = (int)u->completion_tokens;
    } else {
        /* The provider reports no usage: count words instead. */
        r->usage.input_tokens = r->prompt_words;
        r->usage.output_tokens = conv_words(r->text);
    }
    r->has_usage = 1;
    sess_count_tokens(r->llm_model, r->usage.input_tokens, r->usage.output_tokens);
    stage_release(r->llm);
    r->llm = NULL;
    r->llm_done = 1;
    if (r->modalities & PROTO_MOD_AUDIO) chunker_flush(r->ch, on_sentence, s);
    if (check_pending_fail(s)) return;
    maybe_complete(s);
}

static void llm_error(void *user, stage_call *c, const vx_error *err)
{
    session *s = user;
    response *r = s->resp;
    if (r == NULL || c != r->llm) return;
    if (r->llm_committed) stop_early(s, "llm", err); /* the client has part of it */
    else fail(s, "llm_failed", err);
}

/* The LLM provider failed before any of its output reached the client:
 * forget the text, sentences, synthesis and audio made from it; the next
 * attempt answers from the start. */
static void llm_reset(void *user, stage_call *c)
{
    session *s = user;
    response *r = s->resp;
    if (r == NULL || c != r->llm) return;
    r->text_len = 0;
    if (r->text) r->text[0] = '\0';
    chunker_reset(r->ch);
    if (r->tts) {
        stage_cancel(r->tts);
        stage_release(r->tts);
        r->tts = NULL;
    }
    r->tts_sent = NULL;
    sentence *st = r->sent_head;
    while (st) {
        sentence *n = st->next;
        free(st->text);
        free(st);
        st = n;
    }
    r->sent_head = r->sent_tail = NULL;
    r->q_len = 0;
    r->n_segs = 0;
    resampler_free(r->out_rs);
    r->out_rs = NULL;
    r->out_src_rate = 0;
    r->audio_started = 0;
    r->pending_fail = 0;
}

/* ------------------------------------------------------------ paced output */

uint32_t respond_tick(session *s)
{
    response *r = s->resp;
    if (r == NULL || r->q_len == 0 || r->held) return 0;
    uint64_t rate = (uint64_t)s->cfg.output_rate;
    uint64_t lead = (uint64_t)s->a->s.audio_lead_ms;
    size_t allowed;
    if (lead == 0) {
        allowed = r->q_len; /* no pacing */
    } else {
        uint64_t elapsed = sess_now_ns() - r->t_audio_start_ns;
        uint64_t budget = (elapsed / 1000000ull + lead) * rate / 1000;
        allowed = budget > r->samples_released ? (size_t)(budget - r->samples_released) : 0;
        if (allowed > r->q_len) allowed = r->q_len;
    }
    size_t max_delta = (size_t)(rate * MAX_DELTA_MS / 1000);
    size_t done = 0;
    proto_pos p = pos_of(r);
    while (done < allowed && r->n_segs) {
        struct qseg *sg = &r->segs[0];
        size_t n = allowed - done;
        if (n > sg->n) n = sg->n;
        if (n > max_delta) n = max_delta;
        if (!sg->s->announced) {
            /* The transcript of a sentence goes out with its first audio. */
            sg->s->announced = 1;
            char *t = malloc(strlen(sg->s->text) + 2);
            if (t) {
                sprintf(t, "%s%s", sg->s->text, sg->s->next || !r->llm_done ? " " : "");
                sess_send(s, proto_ev_transcript_delta(s->d, &p, t));
                free(t);
            }
        }
        if (r->samples_released == 0) recorder_note_ms(s->rec, r->it->id, "assistant", "first_audio_ms", -1);
        if (r->samples_released == 0 && !r->host_audio_seen && !r->was_held && r->t_first_chunk_ns) {
            r->host_audio_seen = 1;
            sess_observe_host(HOST_AUDIO_TO_CLIENT, sess_now_ns() - r->t_first_chunk_ns);
        }
        if (r->samples_released == 0 && s->in.t_speech_end_ns) {
            sess_observe_turn_latency(s, sess_now_ns() - s->in.t_speech_end_ns);
            s->in.t_speech_end_ns = 0;
        }
        if (s->tp->send_audio) s->tp->send_audio(s->conn, r->q + done, n, s->cfg.output_rate, r->id);
        else sess_send(s, proto_ev_audio_delta(s->d, &p, r->q + done, n));
        commit_llm(r);
        if (r->tts && sg->s == r->tts_sent) stage_commit(r->tts);
        recorder_bot_audio(s->rec, r->q + done, n, s->cfg.output_rate, r->it->id);
        sg->s->samples_sent += n;
        sg->n -= n;
        r->samples_released += n;
        done += n;
        if (sg->n == 0) {
            memmove(r->segs, r->segs + 1, (r->n_segs - 1) * sizeof *r->segs);
            r->n_segs--;
        }
    }
    if (done) {
        memmove(r->q, r->q + done, (r->q_len - done) * sizeof *r->q);
        r->q_len -= done;
    }
    if (r->q_len == 0) {
        maybe_complete(s);
        return 0;
    }
    uint32_t tick = (uint32_t)(lead / 3);
    if (tick < TICK_MIN_MS) tick = TICK_MIN_MS;
    if (tick > TICK_MAX_MS) tick = TICK_MAX_MS;
    sess_schedule_tick(s, tick);
    return tick;
}

/* ------------------------------------------------------------ start / cancel */

int respond_start(session *s, const proto_client_event *ev)
{
    const char *event_id = ev ? ev->event_id : NULL;
    const char *missing = NULL;
    vx_message *msgs = NULL;
    if (s->resp) {
        sess_error(s, "invalid_request_error", "conversation_already_has_active_response",
                   "a response is already in progress; cancel it first", NULL, event_id);
        return -1;
    }
    response *r = calloc(1, sizeof *r);
    if (r == NULL) goto oom;
    proto_new_id("resp_", r->id, sizeof r->id);
    r->modalities = ev && ev->modalities ? ev->modalities : s->cfg.modalities;
    r->max_output_tokens = ev && ev->max_output_tokens >= 0 ? ev->max_output_tokens : s->cfg.max_output_tokens;
    r->out_of_band = ev && ev->out_of_band;
    if (ev && ev->instructions && (r->instructions = strdup(ev->instructions)) == NULL) goto oom;
    if (ev && ev->metadata_json && (r->metadata_json = strdup(ev->metadata_json)) == NULL) goto oom;
    if (ev && ev->voice && (r->voice = strdup(ev->voice)) == NULL) goto oom;
    r->ch = chunker_new(0, 0);
    if (r->ch == NULL) goto oom;
    r->t_created_ns = sess_now_ns();

    size_t n = 0;
    const char *instr = r->instructions ? r->instructions : s->cfg.instructions;
    if (ev && ev->has_input)
        msgs = conv_messages_from(&s->conv, instr, ev->input, ev->n_input, &n, &missing);
    else
        msgs = conv_messages(&s->conv, instr, &n);
    if (msgs == NULL && missing) {
        char m[160];
        snprintf(m, sizeof m, "response.input refers to item '%.60s', which is not in the conversation", missing);
        respond_free(r);
        sess_error(s, "invalid_request_error", "item_not_found", m, "response.input", event_id);
        return -1;
    }
    if (msgs == NULL) goto oom;
    for (size_t i = 0; i < n; i++) r->prompt_words += conv_words(msgs[i].content);
    proto_content ct = (r->modalities & PROTO_MOD_AUDIO) ? PROTO_OUTPUT_AUDIO : PROTO_OUTPUT_TEXT;
    /* An out-of-band response's item stays outside the conversation. */
    r->it = r->out_of_band ? conv_detached("assistant", ct) : conv_add(&s->conv, NULL, NULL, "assistant", ct, NULL, "in_progress");
    if (r->it == NULL) goto oom;
    s->resp = r;
    recorder_note(s->rec, r->it->id, "assistant", "response_id", r->id);
    recorder_note_ms(s->rec, r->it->id, "assistant", "created_ms", -1);
    if (r->out_of_band) recorder_note(s->rec, r->it->id, "assistant", "conversation", "none");

    if ((r->modalities & PROTO_MOD_AUDIO) && stage_ctx_providers(s->sx, STAGE_TTS) == 0) {
        /* No voice configured: answer in text rather than not at all. */
        r->modalities = (r->modalities & ~PROTO_MOD_AUDIO) | PROTO_MOD_TEXT;
        r->it->content = PROTO_OUTPUT_TEXT;
    }

    proto_response pr;
    response_view(s, r, &pr, "in_progress");
    sess_send(s, proto_ev_response(s->d, 0, &pr));

    const char *tools = ev && ev->has_tools ? ev->tools_json : s->cfg.tools_json;
    if (tools && strcmp(tools, "[]") == 0) tools = NULL;
    char *mjson = ev && ev->has_input ? NULL : conv_messages_json(&s->conv, instr);
    vx_llm_params params = {.struct_size = sizeof params,
                            .temperature = s->cfg.temperature,
                            .max_tokens = r->max_output_tokens,
                            .session_id = s->id,
                            .tools_json = tools,
                            .tool_choice = ev && ev->tool_choice ? ev->tool_choice : s->cfg.tool_choice,
                            .messages_json = mjson};
    stage_events sev = {.user = s, .on_token = llm_token, .on_done = llm_done, .on_error = llm_error,
                        .on_tool_call = llm_tool_call, .on_reset = llm_reset};
    if (s->in.t_final_ns) {
        sess_observe_host(HOST_STT_TO_LLM, sess_now_ns() - s->in.t_final_ns);
        s->in.t_final_ns = 0;
    }
    r->llm = stage_llm_generate(s->sx, msgs, n, &params, &sev);
    free(msgs);
    free(mjson);
    if (r->llm == NULL) {
        vx_error e = {VX_EUNAVAIL, 0, 0, "no language model provider is available"};
        fail(s, "no_llm_provider", &e);
        return -1;
    }
    return 0;
oom:
    free(msgs);
    respond_free(r);
    sess_error(s, "server_error", "internal_error", "out of memory", NULL, event_id);
    return -1;
}

void respond_cancel(session *s, const char *reason)
{
    if (s->resp == NULL) return;
    if (s->resp->held) {
        respond_discard(s);
        return;
    }
    if (strcmp(reason, "turn_detected") == 0) sess_count_interruption();
    /* The client stops playing now: what was sent ahead was never heard. */
    recorder_bot_stop(s->rec);
    if (s->tp->clear_audio && s->conn) s->tp->clear_audio(s->conn, 0);
    finish(s, "cancelled", reason, NULL);
}

/* ------------------------------------------------------------ speculative replies */

int respond_held(const session *s) { return s->resp != NULL && s->resp->held; }

int respond_speculate(session *s, const char *text)
{
    if (s->resp || s->resp_waiting) return -1;
    if (!(s->cfg.modalities & PROTO_MOD_AUDIO) || stage_ctx_providers(s->sx, STAGE_TTS) == 0) return -1;
    if (s->cfg.tools_json && strcmp(s->cfg.tools_json, "[]") != 0) return -1;
    const char *instr = s->cfg.instructions;
    char *mjson = conv_messages_json(&s->conv, instr);
    if (mjson) {
        free(mjson); /* function items: the prompt is not a plain message list */
        return -1;
    }
    response *r = calloc(1, sizeof *r);
    if (r == NULL) return -1;
    size_t n = 0;
    vx_message *msgs = NULL;
    r->held = 1;
    r->out_of_band = 1; /* its item stays outside the conversation until released */
    proto_new_id("resp_", r->id, sizeof r->id);
    r->modalities = s->cfg.modalities;
    r->max_output_tokens = s->cfg.max_output_tokens;
    if ((r->held_text = strdup(text)) == NULL || (r->ch = chunker_new(0, 0)) == NULL) goto fail;
    r->t_created_ns = sess_now_ns();
    msgs = conv_messages(&s->conv, instr, &n);
    vx_message *m2 = msgs ? realloc(msgs, (n + 1) * sizeof *msgs) : NULL;
    if (m2 == NULL) goto fail;
    msgs = m2;
    msgs[n].role = "user";
    msgs[n].content = r->held_text;
    n++;
    for (size_t i = 0; i < n; i++) r->prompt_words += conv_words(msgs[i].content);
    r->it = conv_detached("assistant", PROTO_OUTPUT_AUDIO);
    if (r->it == NULL) goto fail;
    s->resp = r;
    vx_llm_params params = {.struct_size = sizeof params,
                            .temperature = s->cfg.temperature,
                            .max_tokens = r->max_output_tokens,
                            .session_id = s->id,
                            .tool_choice = s->cfg.tool_choice};
    stage_events sev = {.user = s, .on_token = llm_token, .on_done = llm_done, .on_error = llm_error,
                        .on_tool_call = llm_tool_call, .on_reset = llm_reset};
    r->llm = stage_llm_generate(s->sx, msgs, n, &params, &sev);
    free(msgs);
    if (r->llm == NULL) {
        s->resp = NULL;
        respond_free(r);
        return -1;
    }
    return 0;
fail:
    free(msgs);
    respond_free(r);
    return -1;
}

void respond_discard(session *s)
{
    response *r = s->resp;
    if (r == NULL || !r->held) return;
    s->resp = NULL;
    sess_count_speculative(0);
    log_debug("speculative reply discarded", "session_id", s->id, "response_id", r->id);
    respond_free(r); /* cancels its calls; frees its detached item */
}

int respond_release(session *s, const char *text)
{
    response *r = s->resp;
    if (r == NULL || !r->held) return 0;
    if (strcmp(r->held_text, text) != 0) {
        respond_discard(s);
        return 0;
    }
    /* The reply enters the conversation after the user's item, as the
     * one a confirmed turn starts would. */
    item *it = conv_add(&s->conv, NULL, r->it->id, "assistant", r->it->content, NULL, "in_progress");
    if (it == NULL) {
        respond_discard(s);
        return 0;
    }
    conv_item_free(r->it);
    r->it = it;
    r->held = 0;
    r->was_held = 1;
    r->out_of_band = 0;
    sess_count_speculative(1);
    recorder_note(s->rec, r->it->id, "assistant", "response_id", r->id);
    recorder_note_ms(s->rec, r->it->id, "assistant", "created_ms", -1);
    proto_response pr;
    response_view(s, r, &pr, "in_progress");
    sess_send(s, proto_ev_response(s->d, 0, &pr));
    if (r->text_len > 0) {
        announce(s, r);
        recorder_note(s->rec, r->it->id, "assistant", "llm", r->llm_first_model);
        recorder_note_ms(s->rec, r->it->id, "assistant", "first_token_ms", -1);
        recorder_provider(s->rec, "llm", r->llm_first_model);
    }
    if (r->audio_started) {
        recorder_note(s->rec, r->it->id, "assistant", "tts", r->tts_model);
        recorder_provider(s->rec, "tts", r->tts_model);
        r->t_audio_start_ns = sess_now_ns(); /* pacing starts now */
    }
    if (r->q_len) respond_tick(s);
    else if (check_pending_fail(s)) return 1;
    else maybe_complete(s);
    return 1;
}
