/*
 * voxray-client: talk to a voxray server (or any OpenAI Realtime endpoint
 * reachable over ws://) from WAV files, one file per user turn, and report
 * what came back and how fast.
 *
 * Everything runs on the libwebsockets service thread: the audio is paced by
 * an lws_sul timer, so no lws call ever happens on another thread. Client
 * events go through a FIFO drained one message per WRITEABLE callback, as
 * lws requires.
 *
 * Protocol: the OpenAI Realtime API as typed in the openai npm package
 * (resources/realtime/realtime.d.ts), GA event names by default, beta names
 * with --beta (which also sends the header "OpenAI-Beta: realtime=v1").
 *
 * Timing marks are taken on this side of the socket with CLOCK_MONOTONIC:
 * "end of speech" is the moment the message carrying the file's last
 * non-silent sample was handed to the socket, "first audio" the moment the
 * first audio delta of the reply was received.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <libwebsockets.h>
#include <openssl/evp.h>

#include "cliutil.h"
#include "wav.h"

#define PROG "voxray-client"

#define EXIT_OK 0
#define EXIT_FAIL 1
#define EXIT_USAGE 2
#define EXIT_CONNECT 3

#define CHUNK_PER_SEC 50            /* 20 ms appends */
#define SILENT_LEVEL 64             /* |sample| <= this is silence (about -54 dBFS) */
#define MAX_MESSAGE (64u << 20)     /* a larger server message is dropped */
#define CLOSE_GRACE_US 5000000      /* wait this long for the close handshake */
#define DEFAULT_URL "ws://127.0.0.1:8080/v1/realtime"
#define BETA_RATE 24000             /* the beta dialect has no rate field */

/* ------------------------------------------------------------ small helpers */

static volatile sig_atomic_t g_interrupted;
static struct lws_context *g_ctx; /* for the signal handler only */

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    fflush(stdout); /* keep stdout and stderr in order on a terminal */
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* ------------------------------------------------------------ state */

typedef struct opts {
    const char *url;
    const char *output;
    const char *instructions;
    double speed;        /* 0: as fast as the socket takes it */
    int beta;
    int manual;
    int silence_ms;
    int rate;            /* declared input rate, 0: the files' */
    double timeout;      /* seconds */
    int json;
    int quiet;
    const char *api_key; /* $VOXRAY_API_KEY, sent as a Bearer token; NULL: none */
    char **files;
    int nfiles;
} opts;

/* A client event waiting for WRITEABLE; buf holds LWS_PRE bytes of room
 * for lws's framing, then the JSON text. */
typedef struct outmsg {
    struct outmsg *next;
    size_t len;
    unsigned mark;
    unsigned char buf[];
} outmsg;

#define MARK_EOS 1u        /* carries the file's last non-silent sample */
#define MARK_STREAM_END 2u /* the turn's last message */

typedef enum phase {
    PH_CONNECTING,
    PH_WAIT_CREATED,
    PH_WAIT_UPDATED,
    PH_TURNS,
    PH_CLOSING,
    PH_DONE
} phase;

typedef struct turn {
    sbuf transcript;     /* every completed input transcription, joined */
    sbuf reply;          /* text of the latest response */
    size_t audio_bytes;  /* audio of the latest response */
    int64_t t_eos;       /* end of speech sent, -1: not yet */
    int64_t t_stop;      /* last speech_stopped received, -1: none */
    int64_t t_audio;     /* first audio of the answering response, -1: none */
    int64_t stop_to_audio; /* us, -1: unknown */
    int resp_seen;       /* a response.created arrived in this turn */
    int resp_final;      /* the current response answers the whole file */
    int errors;
    int done;
    char status[32];     /* response.done status, or timeout/closed/... */
} turn;

typedef struct client {
    const opts *o;
    wav_audio *wavs;
    turn *turns;
    int in_rate, out_rate;

    struct lws_context *ctx;
    struct lws *wsi;
    phase ph;
    int established;
    int exit_code;      /* forced result (connection failure, fatal error) */
    int setup_errors;   /* error events before the first turn */
    int close_code;     /* the server's close code, 0: none */
    char close_reason[124];

    sbuf rx;            /* the message being reassembled */
    int rx_skip;        /* drop the rest of an oversized or binary message */

    outmsg *qhead, *qtail;

    /* The file being streamed. Chunk k covers samples
     * [k*rate/50, (k+1)*rate/50) of the file followed by the trailing
     * silence. */
    int cur;
    size_t total;       /* samples to send: file + silence */
    size_t nchunks, next_chunk, eos_chunk;
    int64_t stream_t0;
    int all_queued, stream_done;

    lws_sorted_usec_list_t sul_pace, sul_timeout;

    wav_writer *wav;
    unsigned char carry; /* an odd byte left over from an audio delta */
    int has_carry;

    int bot_open;       /* a "bot: " line is being streamed */
    unsigned warned;    /* other-dialect event names already reported */
} client;

static void finish(client *c);
static void set_done(client *c);
static void start_turn(client *c, int i);
static void end_turn(client *c, const char *status);

/* ------------------------------------------------------------ output queue */

/* Serialize ev (reference stolen) and queue it. On failure the session is
 * closed: a client that cannot send can only give wrong figures. */
static int send_event(client *c, json_t *ev, unsigned mark) {
    char *text = NULL;
    outmsg *m = NULL;
    size_t n;

    if (!ev) goto fail;
    text = json_dumps(ev, JSON_COMPACT);
    if (!text) goto fail;
    n = strlen(text);
    m = malloc(sizeof(*m) + LWS_PRE + n);
    if (!m) goto fail;
    m->next = NULL;
    m->len = n;
    m->mark = mark;
    memcpy(m->buf + LWS_PRE, text, n);
    if (c->qtail)
        c->qtail->next = m;
    else
        c->qhead = m;
    c->qtail = m;
    free(text);
    json_decref(ev);
    if (c->wsi) lws_callback_on_writable(c->wsi);
    return 0;

fail:
    say("out of memory building a client event");
    free(text);
    json_decref(ev);
    c->exit_code = EXIT_FAIL;
    finish(c);
    return -1;
}

static void queue_clear(client *c) {
    while (c->qhead) {
        outmsg *m = c->qhead;
        c->qhead = m->next;
        free(m);
    }
    c->qtail = NULL;
}

/* ------------------------------------------------------------ timers */

static void on_timeout(lws_sorted_usec_list_t *sul);

static void arm_timeout(client *c, lws_usec_t us) {
    lws_sul_schedule(c->ctx, 0, &c->sul_timeout, on_timeout, us);
}

static void arm_reply_timeout(client *c) {
    arm_timeout(c, (lws_usec_t)(c->o->timeout * 1e6));
}

static void on_timeout(lws_sorted_usec_list_t *sul) {
    client *c = lws_container_of(sul, client, sul_timeout);

    switch (c->ph) {
    case PH_CONNECTING:
        say("no connection to %s within %g s", c->o->url, c->o->timeout);
        c->exit_code = EXIT_CONNECT;
        set_done(c); /* the pending wsi dies with the context */
        break;
    case PH_WAIT_CREATED:
        say("no session.created within %g s", c->o->timeout);
        c->exit_code = EXIT_FAIL;
        finish(c);
        break;
    case PH_WAIT_UPDATED:
        say("no session.updated within %g s", c->o->timeout);
        c->exit_code = EXIT_FAIL;
        finish(c);
        break;
    case PH_TURNS:
        say("turn %d: no reply within %g s", c->cur + 1, c->o->timeout);
        end_turn(c, "timeout");
        finish(c);
        break;
    case PH_CLOSING:
        /* The server never answered our close frame. */
        set_done(c);
        break;
    case PH_DONE:
        break;
    }
}

/* ------------------------------------------------------------ audio out */

static int b64_encode(const int16_t *pcm, size_t n, char **out) {
    unsigned char *le = NULL;
    char *b64 = NULL;
    size_t bytes = n * 2;

    le = malloc(bytes ? bytes : 1);
    b64 = malloc(4 * ((bytes + 2) / 3) + 1);
    if (!le || !b64 || bytes > INT_MAX) goto fail;
    for (size_t i = 0; i < n; i++) {
        uint16_t v = (uint16_t)pcm[i];
        le[2 * i] = (unsigned char)(v & 0xff);
        le[2 * i + 1] = (unsigned char)(v >> 8);
    }
    EVP_EncodeBlock((unsigned char *)b64, le, (int)bytes);
    free(le);
    *out = b64;
    return 0;

fail:
    free(le);
    free(b64);
    return -1;
}

/* Decode base64 text (newlines tolerated). Returns 0 with a malloc'd
 * buffer, or -1 on bad input or no memory. */
static int b64_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen) {
    EVP_ENCODE_CTX *ctx = NULL;
    unsigned char *buf = NULL;
    int n1 = 0, n2 = 0;

    if (inlen > INT_MAX) goto fail;
    ctx = EVP_ENCODE_CTX_new();
    buf = malloc(inlen + 4); /* decoded data is 3/4 of the text */
    if (!ctx || !buf) goto fail;
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, buf, &n1, (const unsigned char *)in, (int)inlen) < 0) goto fail;
    if (EVP_DecodeFinal(ctx, buf + n1, &n2) < 0) goto fail;
    EVP_ENCODE_CTX_free(ctx);
    *out = buf;
    *outlen = (size_t)n1 + (size_t)n2;
    return 0;

fail:
    EVP_ENCODE_CTX_free(ctx);
    free(buf);
    return -1;
}

/* ------------------------------------------------------------ streaming */

static size_t chunk_start(const client *c, size_t k) {
    return (size_t)((unsigned long long)k * (unsigned)c->in_rate / CHUNK_PER_SEC);
}

/* When chunk k is due: the moment its last sample would have been spoken
 * into a microphone, scaled by --speed. */
static int64_t chunk_due(const client *c, size_t k) {
    double sec = (double)chunk_start(c, k + 1) / c->in_rate;
    return c->stream_t0 + (int64_t)(sec * 1e6 / c->o->speed);
}

/* Queue chunk next_chunk. Samples past the end of the file are the
 * trailing silence. */
static int queue_chunk(client *c) {
    const wav_audio *w = &c->wavs[c->cur];
    size_t k = c->next_chunk;
    size_t a = chunk_start(c, k), b = chunk_start(c, k + 1);
    int16_t *pcm = NULL;
    char *b64 = NULL;
    unsigned mark = 0;
    json_t *ev;

    if (b > c->total) b = c->total;
    pcm = calloc(b - a ? b - a : 1, sizeof(*pcm));
    if (!pcm) goto oom;
    if (a < w->samples)
        memcpy(pcm, w->pcm + a, ((b < w->samples ? b : w->samples) - a) * sizeof(*pcm));
    if (b64_encode(pcm, b - a, &b64) != 0) goto oom;
    free(pcm);
    pcm = NULL;

    if (k == c->eos_chunk) mark |= MARK_EOS;
    c->next_chunk++;
    if (c->next_chunk == c->nchunks && !c->o->manual) mark |= MARK_STREAM_END;
    ev = json_pack("{s:s, s:s}", "type", "input_audio_buffer.append", "audio", b64);
    free(b64);
    if (send_event(c, ev, mark) != 0) return -1;

    if (c->next_chunk == c->nchunks) {
        c->all_queued = 1;
        if (c->o->manual) {
            char id[32];
            snprintf(id, sizeof(id), "commit_%d", c->cur + 1);
            if (send_event(c, json_pack("{s:s, s:s}", "type", "input_audio_buffer.commit",
                                        "event_id", id), 0) != 0)
                return -1;
            snprintf(id, sizeof(id), "response_%d", c->cur + 1);
            if (send_event(c, json_pack("{s:s, s:s}", "type", "response.create",
                                        "event_id", id), MARK_STREAM_END) != 0)
                return -1;
        }
    }
    return 0;

oom:
    free(pcm);
    free(b64);
    say("out of memory encoding audio");
    c->exit_code = EXIT_FAIL;
    finish(c);
    return -1;
}

static void on_pace(lws_sorted_usec_list_t *sul);

/* Queue every chunk that is due and sleep until the next one. At speed 0
 * the WRITEABLE handler calls this whenever the queue runs dry, so at most
 * one chunk waits at a time. */
static void stream_feed(client *c) {
    if (c->ph != PH_TURNS || c->all_queued) return;
    if (c->o->speed <= 0) {
        if (!c->qhead) queue_chunk(c);
        return;
    }
    int64_t now = cli_now_us();
    while (c->ph == PH_TURNS && !c->all_queued && chunk_due(c, c->next_chunk) <= now)
        if (queue_chunk(c) != 0) return;
    if (c->ph == PH_TURNS && !c->all_queued)
        lws_sul_schedule(c->ctx, 0, &c->sul_pace, on_pace,
                         (lws_usec_t)(chunk_due(c, c->next_chunk) - now));
}

static void on_pace(lws_sorted_usec_list_t *sul) {
    stream_feed(lws_container_of(sul, client, sul_pace));
}

static size_t last_voiced(const wav_audio *w) {
    for (size_t i = w->samples; i > 0; i--)
        if (abs(w->pcm[i - 1]) > SILENT_LEVEL) return i - 1;
    return w->samples ? w->samples - 1 : 0;
}

static void start_turn(client *c, int i) {
    const wav_audio *w = &c->wavs[i];
    turn *t = &c->turns[i];
    size_t silence = c->o->manual ? 0 : (size_t)c->o->silence_ms * (size_t)c->in_rate / 1000;
    size_t eos = last_voiced(w), k;

    c->cur = i;
    c->total = w->samples + silence;
    c->nchunks = (c->total * CHUNK_PER_SEC + (size_t)c->in_rate - 1) / (size_t)c->in_rate;
    /* The chunk holding sample eos: the last k with chunk_start(k) <= eos. */
    k = eos * CHUNK_PER_SEC / (size_t)c->in_rate;
    while (k + 1 < c->nchunks && chunk_start(c, k + 1) <= eos) k++;
    while (k > 0 && chunk_start(c, k) > eos) k--;
    c->eos_chunk = k;
    c->next_chunk = 0;
    c->all_queued = c->stream_done = 0;
    c->stream_t0 = cli_now_us();
    t->t_eos = t->t_stop = t->t_audio = t->stop_to_audio = -1;
    if (i == 0) t->errors += c->setup_errors; /* errors before the first turn */

    if (!c->o->quiet)
        say("turn %d/%d: %s (%.2f s at %d Hz)", i + 1, c->o->nfiles, c->o->files[i],
            (double)w->samples / w->rate, w->rate);
    stream_feed(c);
}

/* The next file starts once the reply is complete and the trailing silence
 * of this one is out; after the last file the session is closed. */
static void maybe_next_turn(client *c) {
    if (c->ph != PH_TURNS || !c->turns[c->cur].done || !c->stream_done) return;
    if (c->cur + 1 < c->o->nfiles)
        start_turn(c, c->cur + 1);
    else
        finish(c);
}

/* Leave the service loop. The wake-up matters when this runs inside lws
 * (a timer, a callback): lws would otherwise poll on until its next timer. */
static void set_done(client *c) {
    c->ph = PH_DONE;
    lws_cancel_service(c->ctx);
}

/* Close with code 1000 after the current write. */
static void finish(client *c) {
    if (c->ph == PH_CLOSING || c->ph == PH_DONE) return;
    lws_sul_cancel(&c->sul_pace);
    queue_clear(c);
    if (!c->wsi || !c->established) {
        set_done(c);
        return;
    }
    c->ph = PH_CLOSING;
    arm_timeout(c, CLOSE_GRACE_US);
    lws_callback_on_writable(c->wsi);
}

/* ------------------------------------------------------------ reporting */

static void bot_close_line(client *c) {
    if (c->bot_open) {
        fputc('\n', stdout);
        fflush(stdout);
        c->bot_open = 0;
    }
}

static long ms_between(int64_t a, int64_t b) {
    return (long)llround((double)(b - a) / 1000.0);
}

static long audio_ms(const client *c, size_t bytes) {
    return c->out_rate > 0 ? (long)((bytes / 2) * 1000 / (size_t)c->out_rate) : 0;
}

static void report_turn(client *c, int i) {
    turn *t = &c->turns[i];
    long ttfa = t->t_audio >= 0 && t->t_eos >= 0 ? ms_between(t->t_eos, t->t_audio) : -1;
    long sta = t->stop_to_audio >= 0 ? (long)llround(t->stop_to_audio / 1000.0) : -1;
    char a[48], b[48];

    bot_close_line(c);
    if (c->o->json) {
        json_t *o = json_pack("{s:i, s:s, s:s, s:I, s:o, s:o, s:s, s:i}",
                              "turn", i + 1,
                              "transcript", sbuf_str(&t->transcript),
                              "reply", sbuf_str(&t->reply),
                              "audio_ms", (json_int_t)audio_ms(c, t->audio_bytes),
                              "ttfa_ms", ttfa >= 0 ? json_integer(ttfa) : json_null(),
                              "stop_to_audio_ms", sta >= 0 ? json_integer(sta) : json_null(),
                              "status", t->status,
                              "errors", t->errors);
        char *s = o ? json_dumps(o, JSON_COMPACT) : NULL;
        if (s)
            printf("%s\n", s);
        else
            say("out of memory printing the summary of turn %d", i + 1);
        free(s);
        json_decref(o);
        fflush(stdout);
        return;
    }
    if (ttfa >= 0)
        snprintf(a, sizeof(a), "%ld ms", ttfa);
    else
        snprintf(a, sizeof(a), "n/a");
    if (sta >= 0)
        snprintf(b, sizeof(b), "%ld ms", sta);
    else
        snprintf(b, sizeof(b), "n/a");
    if (c->o->quiet) {
        printf("turn %d: %s, reply audio %ld ms, time to first audio: %s (from end of speech), "
               "speech_stopped -> first audio: %s, errors: %d\n",
               i + 1, t->status, audio_ms(c, t->audio_bytes), a, b, t->errors);
    } else {
        if (strcmp(t->status, "completed") != 0)
            printf("status: %s\n", t->status);
        else if (t->audio_bytes == 0 && t->reply.len == 0)
            printf("status: completed, but no reply audio or text\n");
        printf("time to first audio: %s (from end of speech), speech_stopped -> first audio: %s\n",
               a, b);
    }
    fflush(stdout);
}

static void end_turn(client *c, const char *status) {
    turn *t = &c->turns[c->cur];
    if (t->done) return;
    snprintf(t->status, sizeof(t->status), "%s", status);
    t->done = 1;
    lws_sul_cancel(&c->sul_timeout);
    report_turn(c, c->cur);
}

/* ------------------------------------------------------------ server events */

static const char *jstr(const json_t *o, const char *key) {
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static void send_session_update(client *c) {
    json_t *s, *td, *ev;

    td = c->o->manual ? json_null() : json_pack("{s:s}", "type", "server_vad");
    if (c->o->beta) {
        s = json_pack("{s:[s,s], s:s, s:s, s:o}", "modalities", "text", "audio",
                      "input_audio_format", "pcm16", "output_audio_format", "pcm16",
                      "turn_detection", td);
    } else {
        s = json_pack("{s:s, s:[s], s:{s:{s:{s:s, s:i}, s:o}}}", "type", "realtime",
                      "output_modalities", "audio",
                      "audio", "input", "format", "type", "audio/pcm", "rate", c->in_rate,
                      "turn_detection", td);
    }
    if (s && c->o->instructions)
        json_object_set_new(s, "instructions", json_string(c->o->instructions));
    ev = s ? json_pack("{s:s, s:s, s:o}", "type", "session.update", "event_id", "session_update",
                       "session", s)
           : NULL;
    send_event(c, ev, 0);
}

/* Check the effective configuration in session.updated and learn the
 * output rate. Returns 0, or -1 when the server did not take what the
 * audio needs (the turns would be meaningless). */
static int check_session(client *c, const json_t *s) {
    if (c->o->beta) {
        const char *in = json_string_value(json_object_get(s, "input_audio_format"));
        const char *out = json_string_value(json_object_get(s, "output_audio_format"));
        if (in && strcmp(in, "pcm16") != 0) {
            say("server kept input_audio_format \"%s\"; this client sends pcm16", in);
            return -1;
        }
        if (out && strcmp(out, "pcm16") != 0) {
            say("server sends output_audio_format \"%s\"; this client reads pcm16 only", out);
            return -1;
        }
        c->out_rate = BETA_RATE;
        return 0;
    }
    const json_t *audio = json_object_get(s, "audio");
    const json_t *in = json_object_get(json_object_get(audio, "input"), "format");
    const json_t *out = json_object_get(json_object_get(audio, "output"), "format");
    const char *type;
    json_int_t rate;

    if (json_is_object(in)) {
        type = json_string_value(json_object_get(in, "type"));
        rate = json_integer_value(json_object_get(in, "rate"));
        if ((type && strcmp(type, "audio/pcm") != 0) || (rate && rate != c->in_rate)) {
            say("server kept input format %s at %lld Hz; this client sends audio/pcm at %d Hz",
                type ? type : "?", (long long)rate, c->in_rate);
            return -1;
        }
    }
    c->out_rate = 24000; /* the protocol's default */
    if (json_is_object(out)) {
        type = json_string_value(json_object_get(out, "type"));
        rate = json_integer_value(json_object_get(out, "rate"));
        if (type && strcmp(type, "audio/pcm") != 0) {
            say("server sends %s audio; this client reads audio/pcm only", type);
            return -1;
        }
        if (rate > 0 && rate <= 768000) c->out_rate = (int)rate;
    }
    return 0;
}

static void on_error_event(client *c, const json_t *ev) {
    const json_t *e = json_object_get(ev, "error");
    const char *code = jstr(e, "code"), *param = jstr(e, "param"), *eid = jstr(e, "event_id");

    bot_close_line(c);
    say("server error: %s%s%s: %s%s%s%s%s%s", jstr(e, "type"), *code ? " " : "", code,
        jstr(e, "message"), *param ? " (param " : "", param, *param ? ")" : "",
        *eid ? ", caused by client event " : "", eid);
    if (c->ph == PH_TURNS)
        c->turns[c->cur].errors++;
    else
        c->setup_errors++;
    if (c->ph == PH_WAIT_UPDATED) {
        say("session.update was refused");
        c->exit_code = EXIT_FAIL;
        finish(c);
    }
}

static void on_audio_delta(client *c, turn *t, const json_t *ev) {
    const char *b64 = json_string_value(json_object_get(ev, "delta"));
    unsigned char *pcm = NULL;
    size_t n = 0, off = 0;
    char err[256];

    if (!b64 || b64_decode(b64, strlen(b64), &pcm, &n) != 0) {
        say("turn %d: audio delta with bad base64 ignored", c->cur + 1);
        t->errors++;
        return;
    }
    if (t->resp_final) {
        t->audio_bytes += n;
        if (t->t_audio < 0 && n > 0) {
            t->t_audio = cli_now_us();
            if (t->t_stop >= 0) t->stop_to_audio = t->t_audio - t->t_stop;
        }
    }
    if (c->wav && n > 0) {
        /* Deltas need not split on sample boundaries: keep an odd byte for
         * the next one. */
        if (c->has_carry) {
            unsigned char two[2] = {c->carry, pcm[0]};
            if (wav_writer_append(c->wav, two, 2, err, sizeof(err)) != 0) goto wfail;
            c->has_carry = 0;
            off = 1;
        }
        if ((n - off) & 1) {
            c->carry = pcm[n - 1];
            c->has_carry = 1;
        }
        if (wav_writer_append(c->wav, pcm + off, (n - off) & ~(size_t)1, err, sizeof(err)) != 0)
            goto wfail;
    }
    free(pcm);
    return;

wfail:
    say("%s: %s", c->o->output, err);
    free(pcm);
    c->exit_code = EXIT_FAIL;
    finish(c);
}

static void on_reply_text(client *c, turn *t, const json_t *ev) {
    const char *d = json_string_value(json_object_get(ev, "delta"));
    if (!d || !*d) return;
    sbuf_add(&t->reply, d, strlen(d));
    if (c->o->quiet || c->o->json) return;
    if (!c->bot_open) {
        fputs("bot: ", stdout);
        c->bot_open = 1;
        fputs(sbuf_str(&t->reply), stdout);
    } else {
        fputs(d, stdout);
    }
    fflush(stdout);
}

static void on_transcript(client *c, turn *t, const json_t *ev) {
    const char *s = json_string_value(json_object_get(ev, "transcript"));
    if (!s) return;
    if (t->transcript.len && *s) sbuf_add(&t->transcript, " ", 1);
    sbuf_add(&t->transcript, s, strlen(s));
    if (c->o->quiet || c->o->json) return;
    /* The reply may already be streaming: finish its line, print ours and
     * start the reply over on a line of its own. */
    if (c->bot_open) {
        bot_close_line(c);
        printf("you: %s\n", s);
        printf("bot: %s", sbuf_str(&t->reply));
        c->bot_open = 1;
    } else {
        printf("you: %s\n", s);
    }
    fflush(stdout);
}

static void on_response_done(client *c, turn *t, const json_t *ev) {
    const json_t *r = json_object_get(ev, "response");
    const json_t *det = json_object_get(r, "status_details");
    const char *status = json_string_value(json_object_get(r, "status"));
    const char *reason = json_string_value(json_object_get(det, "reason"));
    const char *msg = json_string_value(json_object_get(json_object_get(det, "error"), "message"));
    int final = t->resp_seen ? t->resp_final : t->t_eos >= 0;

    if (!status) status = "unknown";
    if (strcmp(status, "completed") != 0) {
        bot_close_line(c);
        if (!c->o->quiet)
            say("turn %d: response %s%s%s%s%s%s", c->cur + 1, status, reason ? " (" : "",
                reason ? reason : "", reason ? ")" : "", msg ? ": " : "", msg ? msg : "");
    }
    t->resp_seen = 0;
    /* A response that started before the end of the file answered an
     * earlier pause in it; the turn goes on. */
    if (!final) {
        bot_close_line(c);
        return;
    }
    end_turn(c, status);
    maybe_next_turn(c);
}

static int is_name(const char *type, const char *ga, const char *beta, int is_beta) {
    return strcmp(type, is_beta ? beta : ga) == 0;
}

/* Names of the other dialect are reported once each, then ignored: a
 * server that mixes dialects is wrong, and the turn shows it. */
static void check_dialect(client *c, const char *type) {
    static const char *const ga[] = {
        "response.output_audio.delta", "response.output_audio_transcript.delta",
        "response.output_text.delta", "response.output_audio.done",
        "response.output_audio_transcript.done", "response.output_text.done",
        "conversation.item.added", "conversation.item.done"};
    static const char *const beta[] = {
        "response.audio.delta", "response.audio_transcript.delta", "response.text.delta",
        "response.audio.done", "response.audio_transcript.done", "response.text.done",
        "conversation.item.created"};
    const char *const *other = c->o->beta ? ga : beta;
    size_t n = c->o->beta ? sizeof(ga) / sizeof(*ga) : sizeof(beta) / sizeof(*beta);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(type, other[i]) == 0 && !(c->warned & (1u << i))) {
            c->warned |= 1u << i;
            say("ignoring \"%s\": a %s event name in a %s session", type,
                c->o->beta ? "GA" : "beta", c->o->beta ? "beta" : "GA");
        }
    }
}

static void on_message(client *c, const char *text, size_t len) {
    json_error_t jerr;
    json_t *ev = json_loadb(text, len, 0, &jerr);
    const char *type;
    int beta = c->o->beta;

    if (!ev || !json_is_object(ev)) {
        say("server sent a message that is not a JSON object: %s", ev ? "" : jerr.text);
        goto done;
    }
    type = jstr(ev, "type");

    if (strcmp(type, "error") == 0) {
        on_error_event(c, ev);
        goto done;
    }
    if (c->ph == PH_WAIT_CREATED) {
        if (strcmp(type, "session.created") != 0) {
            say("expected session.created first, got \"%s\"", type);
            goto done;
        }
        if (!c->o->quiet) {
            const char *id = jstr(json_object_get(ev, "session"), "id");
            say("connected to %s, session %s (%s)", c->o->url, *id ? id : "?",
                beta ? "beta" : "GA");
        }
        c->ph = PH_WAIT_UPDATED;
        arm_reply_timeout(c);
        send_session_update(c);
        goto done;
    }
    if (c->ph == PH_WAIT_UPDATED) {
        if (strcmp(type, "session.updated") != 0) goto done;
        if (check_session(c, json_object_get(ev, "session")) != 0) {
            c->exit_code = EXIT_FAIL;
            finish(c);
            goto done;
        }
        lws_sul_cancel(&c->sul_timeout);
        if (c->wav) wav_writer_set_rate(c->wav, c->out_rate);
        if (!c->o->quiet)
            say("input %d Hz, output %d Hz, %s", c->in_rate, c->out_rate,
                c->o->manual ? "manual turns" : "server VAD");
        c->ph = PH_TURNS;
        start_turn(c, 0);
        goto done;
    }
    if (c->ph != PH_TURNS) goto done;

    turn *t = &c->turns[c->cur];
    if (t->done) goto done; /* late events of a finished turn */
    if (t->t_eos >= 0) arm_reply_timeout(c);

    if (strcmp(type, "input_audio_buffer.speech_started") == 0) {
        t->t_stop = -1;
    } else if (strcmp(type, "input_audio_buffer.speech_stopped") == 0) {
        t->t_stop = cli_now_us();
    } else if (strcmp(type, "conversation.item.input_audio_transcription.completed") == 0) {
        on_transcript(c, t, ev);
    } else if (strcmp(type, "conversation.item.input_audio_transcription.failed") == 0) {
        say("turn %d: input transcription failed: %s", c->cur + 1,
            jstr(json_object_get(ev, "error"), "message"));
    } else if (strcmp(type, "response.created") == 0) {
        bot_close_line(c);
        t->resp_seen = 1;
        t->resp_final = t->t_eos >= 0;
        sbuf_reset(&t->reply);
        t->audio_bytes = 0;
    } else if (is_name(type, "response.output_audio.delta", "response.audio.delta", beta)) {
        if (!t->resp_seen) t->resp_final = t->t_eos >= 0;
        on_audio_delta(c, t, ev);
    } else if (is_name(type, "response.output_audio_transcript.delta",
                       "response.audio_transcript.delta", beta) ||
               is_name(type, "response.output_text.delta", "response.text.delta", beta)) {
        if (!t->resp_seen) t->resp_final = t->t_eos >= 0;
        on_reply_text(c, t, ev);
    } else if (strcmp(type, "response.done") == 0) {
        on_response_done(c, t, ev);
    } else {
        check_dialect(c, type);
    }

done:
    json_decref(ev);
}

/* ------------------------------------------------------------ lws */

static int on_writeable(client *c, struct lws *wsi) {
    outmsg *m;
    int n;

    if (c->ph == PH_CLOSING) {
        lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, (unsigned char *)"done", 4);
        return -1;
    }
    if (!c->qhead) stream_feed(c);
    m = c->qhead;
    if (!m) return 0;
    c->qhead = m->next;
    if (!c->qhead) c->qtail = NULL;

    n = lws_write(wsi, m->buf + LWS_PRE, m->len, LWS_WRITE_TEXT);
    if (n < 0 || (size_t)n < m->len) {
        say("write to the server failed");
        free(m);
        return -1;
    }
    if (c->ph == PH_TURNS) {
        turn *t = &c->turns[c->cur];
        if (m->mark & MARK_EOS) {
            t->t_eos = cli_now_us();
            arm_reply_timeout(c);
        }
        if (m->mark & MARK_STREAM_END) c->stream_done = 1;
    }
    free(m);
    if (c->stream_done) maybe_next_turn(c);
    if (c->qhead || (c->ph == PH_TURNS && !c->all_queued && c->o->speed <= 0))
        lws_callback_on_writable(wsi);
    return 0;
}

static void on_closed(client *c) {
    c->wsi = NULL;
    if (c->ph == PH_CLOSING || c->ph == PH_DONE) {
        set_done(c);
        return;
    }
    bot_close_line(c);
    if (c->close_code)
        say("server closed the connection (code %d%s%s)", c->close_code,
            c->close_reason[0] ? ": " : "", c->close_reason);
    else
        say("connection lost");
    if (c->ph == PH_TURNS) end_turn(c, "closed");
    if (c->exit_code == EXIT_OK) c->exit_code = EXIT_FAIL;
    set_done(c);
}

static int client_cb(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in,
                     size_t len) {
    client *c = lws_context_user(lws_get_context(wsi));

    (void)user; /* one connection: the state hangs off the context */
    switch (reason) {
    case LWS_CALLBACK_CLIENT_APPEND_HANDSHAKE_HEADER:
        if (c->o->beta) {
            unsigned char **p = in;
            static const char v[] = "realtime=v1";
            if (lws_add_http_header_by_name(wsi, (const unsigned char *)"OpenAI-Beta:",
                                            (const unsigned char *)v, (int)strlen(v), p,
                                            *p + len))
                return -1;
        }
        if (c->o->api_key) {
            unsigned char **p = in;
            char v[600];
            int n = snprintf(v, sizeof v, "Bearer %s", c->o->api_key);
            if (n < 0 || (size_t)n >= sizeof v ||
                lws_add_http_header_by_name(wsi, (const unsigned char *)"Authorization:",
                                            (const unsigned char *)v, n, p, *p + len))
                return -1;
        }
        break;

    case LWS_CALLBACK_CLIENT_ESTABLISHED:
        c->established = 1;
        c->ph = PH_WAIT_CREATED;
        arm_reply_timeout(c);
        break;

    case LWS_CALLBACK_CLIENT_CONNECTION_ERROR:
        say("cannot connect to %s: %s", c->o->url, in ? (const char *)in : "unknown error");
        c->wsi = NULL;
        c->exit_code = EXIT_CONNECT;
        set_done(c);
        break;

    case LWS_CALLBACK_CLIENT_RECEIVE:
        if (lws_is_first_fragment(wsi)) {
            sbuf_reset(&c->rx);
            c->rx_skip = 0;
            if (lws_frame_is_binary(wsi)) {
                say("binary message from the server ignored");
                c->rx_skip = 1;
            }
        }
        if (!c->rx_skip) {
            if (c->rx.len + len > MAX_MESSAGE) {
                say("message over %u bytes from the server dropped", MAX_MESSAGE);
                c->rx_skip = 1;
            } else if (sbuf_add(&c->rx, in, len) != 0) {
                say("out of memory receiving a message; dropped");
                c->rx_skip = 1;
            }
        }
        if (lws_is_final_fragment(wsi)) {
            if (!c->rx_skip) on_message(c, sbuf_str(&c->rx), c->rx.len);
            sbuf_reset(&c->rx);
            c->rx_skip = 0;
        }
        break;

    case LWS_CALLBACK_CLIENT_WRITEABLE:
        return on_writeable(c, wsi);

    case LWS_CALLBACK_WS_PEER_INITIATED_CLOSE:
        if (len >= 2) {
            const unsigned char *p = in;
            size_t rl = len - 2, room = sizeof(c->close_reason) - 1;
            if (rl > room) rl = room;
            c->close_code = (p[0] << 8) | p[1];
            memcpy(c->close_reason, p + 2, rl);
            c->close_reason[rl] = '\0';
        }
        break;

    case LWS_CALLBACK_CLIENT_CLOSED:
        on_closed(c);
        break;

    case LWS_CALLBACK_EVENT_WAIT_CANCELLED:
        if (g_interrupted && c && c->ph != PH_CLOSING && c->ph != PH_DONE) {
            bot_close_line(c);
            say("interrupted");
            if (c->ph == PH_TURNS) end_turn(c, "interrupted");
            c->exit_code = EXIT_FAIL;
            if (c->ph == PH_CONNECTING) set_done(c);
            finish(c);
        }
        break;

    default:
        break;
    }
    return 0;
}

static const struct lws_protocols client_protocols[] = {
    {"voxray-client", client_cb, 0, 65536, 0, NULL, 0},
    {NULL, NULL, 0, 0, 0, NULL, 0}
};

static void on_signal(int sig) {
    (void)sig;
    g_interrupted = 1;
    if (g_ctx) lws_cancel_service(g_ctx); /* writes to a pipe: signal-safe */
}

static void lws_log(int level, const char *line) {
    size_t n = strlen(line);
    (void)level;
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r')) n--;
    fprintf(stderr, PROG ": lws: %.*s\n", (int)n, line);
}

/* ------------------------------------------------------------ command line */

static void usage(FILE *f) {
    fprintf(f,
"usage: " PROG " [options] INPUT.wav [INPUT2.wav ...]\n"
"\n"
"Talk to a voxray server over its OpenAI Realtime WebSocket: each WAV file is\n"
"one user turn, streamed like a microphone; the reply is printed, timed and\n"
"optionally saved.\n"
"\n"
"  -u, --url URL        server endpoint (default " DEFAULT_URL ");\n"
"                       ws:// only (put a TLS proxy in front for wss)\n"
"  -o, --output FILE    write the reply audio of all turns to this WAV\n"
"                       (mono 16-bit, at the session's output rate)\n"
"  -s, --speed X        stream X times faster than real time (default 1;\n"
"                       0 = as fast as the connection takes it)\n"
"      --beta           send \"OpenAI-Beta: realtime=v1\" and speak the beta\n"
"                       dialect (24 kHz input only)\n"
"      --manual         no server VAD (turn_detection null): after each file\n"
"                       send input_audio_buffer.commit and response.create\n"
"      --silence MS     silence appended to each file in VAD mode (default 1500)\n"
"      --instructions T system prompt sent in session.update\n"
"      --rate HZ        input rate to declare (default: the files' rate); a\n"
"                       file at another rate is refused: the client does not\n"
"                       resample (the server does)\n"
"      --timeout S      give up when no reply event arrives for S seconds\n"
"                       after the end of a file (default 30); also bounds\n"
"                       connecting and the session set-up\n"
"      --json           print one JSON object per turn on stdout instead of text:\n"
"                       {\"turn\",\"transcript\",\"reply\",\"audio_ms\",\"ttfa_ms\",\n"
"                        \"stop_to_audio_ms\",\"status\",\"errors\"}\n"
"  -q, --quiet          print only one summary line per turn\n"
"  -h, --help           show this help\n"
"      --version        show the version\n"
"\n"
"Environment: VOXRAY_API_KEY, when set, is sent as \"Authorization: Bearer KEY\"\n"
"(a server with [auth] keys refuses connections without one).\n"
"\n"
"Input: RIFF/WAVE 16-bit PCM, mono or stereo (downmixed).\n"
"\n"
"Figures: \"time to first audio\" runs from sending the file's last non-silent\n"
"sample (|x| > %d) to receiving the reply's first audio delta;\n"
"\"speech_stopped -> first audio\" from receiving input_audio_buffer.speech_stopped\n"
"to that same delta (VAD mode only). Server error events go to stderr and are\n"
"counted per turn.\n"
"\n"
"Exit status: 0 every turn completed with reply audio or text, 1 otherwise,\n"
"2 usage or input file error, 3 cannot connect.\n", SILENT_LEVEL);
}

enum { OPT_BETA = 256, OPT_MANUAL, OPT_SILENCE, OPT_INSTR, OPT_RATE, OPT_TIMEOUT, OPT_JSON,
       OPT_VERSION };

/* Returns 0, or EXIT_USAGE after printing why (or -1 after --help/--version). */
static int parse_args(int argc, char **argv, opts *o) {
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"output", required_argument, NULL, 'o'},
        {"speed", required_argument, NULL, 's'},
        {"beta", no_argument, NULL, OPT_BETA},
        {"manual", no_argument, NULL, OPT_MANUAL},
        {"silence", required_argument, NULL, OPT_SILENCE},
        {"instructions", required_argument, NULL, OPT_INSTR},
        {"rate", required_argument, NULL, OPT_RATE},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"json", no_argument, NULL, OPT_JSON},
        {"quiet", no_argument, NULL, 'q'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}
    };
    int ch;

    memset(o, 0, sizeof(*o));
    o->url = DEFAULT_URL;
    o->speed = 1;
    o->silence_ms = 1500;
    o->timeout = 30;
    o->api_key = getenv("VOXRAY_API_KEY"); /* not an option: command lines are public */
    if (o->api_key && *o->api_key == '\0') o->api_key = NULL;
    while ((ch = getopt_long(argc, argv, "u:o:s:qh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': o->url = optarg; break;
        case 'o': o->output = optarg; break;
        case 's':
            if (cli_parse_double(optarg, 0, 1000, &o->speed) != 0) {
                say("--speed: expected a number from 0 to 1000, got \"%s\"", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_BETA: o->beta = 1; break;
        case OPT_MANUAL: o->manual = 1; break;
        case OPT_SILENCE:
            if (cli_parse_int(optarg, 0, 600000, &o->silence_ms) != 0) {
                say("--silence: expected milliseconds from 0 to 600000, got \"%s\"", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_INSTR: o->instructions = optarg; break;
        case OPT_RATE:
            if (cli_parse_int(optarg, 1000, 768000, &o->rate) != 0) {
                say("--rate: expected a sample rate in Hz, got \"%s\"", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_TIMEOUT:
            if (cli_parse_double(optarg, 0.001, 86400, &o->timeout) != 0) {
                say("--timeout: expected seconds (> 0), got \"%s\"", optarg);
                return EXIT_USAGE;
            }
            break;
        case OPT_JSON: o->json = 1; break;
        case 'q': o->quiet = 1; break;
        case 'h': usage(stdout); return -1;
        case OPT_VERSION: printf(PROG " (" PACKAGE_NAME ") " PACKAGE_VERSION "\n"); return -1;
        default:
            fprintf(stderr, "Try '" PROG " --help'.\n");
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        say("no input file");
        fprintf(stderr, "Try '" PROG " --help'.\n");
        return EXIT_USAGE;
    }
    if (strncmp(o->url, "ws://", 5) != 0) {
        say("--url must start with ws:// (got \"%s\"); for wss use a TLS proxy", o->url);
        return EXIT_USAGE;
    }
    if (o->beta && o->rate && o->rate != BETA_RATE) {
        say("--rate %d: the beta dialect has no rate field and is %d Hz only", o->rate,
            BETA_RATE);
        return EXIT_USAGE;
    }
    o->files = argv + optind;
    o->nfiles = argc - optind;
    return 0;
}

/* Read every input and fix the declared rate before connecting, so a bad
 * file costs no session. */
static int load_inputs(const opts *o, wav_audio *wavs, int *in_rate) {
    char err[256];
    int rate = o->beta ? BETA_RATE : o->rate;

    for (int i = 0; i < o->nfiles; i++) {
        if (wav_read(o->files[i], &wavs[i], err, sizeof(err)) != 0) {
            say("%s: %s", o->files[i], err);
            return -1;
        }
        if (wavs[i].samples == 0) {
            say("%s: no audio samples", o->files[i]);
            return -1;
        }
        if (!rate) rate = wavs[i].rate;
        if (wavs[i].rate != rate) {
            if (o->beta)
                say("%s: %d Hz, but beta sessions take %d Hz only; resample the file "
                    "(e.g. sox IN.wav -r %d OUT.wav)", o->files[i], wavs[i].rate, BETA_RATE,
                    BETA_RATE);
            else if (o->rate)
                say("%s: %d Hz differs from --rate %d; the client does not resample: "
                    "resample the file or declare --rate %d", o->files[i], wavs[i].rate,
                    o->rate, wavs[i].rate);
            else
                say("%s: %d Hz, but %s is %d Hz; a session has one input rate",
                    o->files[i], wavs[i].rate, o->files[0], rate);
            return -1;
        }
    }
    *in_rate = rate;
    return 0;
}

int main(int argc, char **argv) {
    opts o;
    client c;
    wav_audio *wavs = NULL;
    turn *turns = NULL;
    struct lws_context_creation_info info;
    struct lws_client_connect_info ci;
    cli_ws_url u;
    char hosthdr[300];
    int rc, in_rate = 0;
    char err[256];

    memset(&c, 0, sizeof(c));
    rc = parse_args(argc, argv, &o);
    if (rc) return rc < 0 ? EXIT_OK : rc;
    if (cli_split_ws_url(o.url, &u) != 0 || u.tls) {
        say("--url: cannot parse \"%s\" (expected ws://HOST[:PORT]/PATH)", o.url);
        return EXIT_USAGE;
    }

    c.o = &o;
    c.exit_code = EXIT_OK;
    c.cur = 0;
    wavs = calloc((size_t)o.nfiles, sizeof(*wavs));
    turns = calloc((size_t)o.nfiles, sizeof(*turns));
    if (!wavs || !turns) {
        say("out of memory");
        rc = EXIT_FAIL;
        goto done;
    }
    c.wavs = wavs;
    c.turns = turns;
    for (int i = 0; i < o.nfiles; i++)
        snprintf(turns[i].status, sizeof(turns[i].status), "not_run");
    if (load_inputs(&o, wavs, &in_rate) != 0) {
        rc = EXIT_USAGE;
        goto done;
    }
    c.in_rate = in_rate;
    if (o.output) {
        c.wav = wav_writer_open(o.output, o.beta ? BETA_RATE : 24000, err, sizeof(err));
        if (!c.wav) {
            say("%s: %s", o.output, err);
            rc = EXIT_USAGE;
            goto done;
        }
    }

    lws_set_log_level(LLL_ERR, lws_log);
    memset(&info, 0, sizeof(info));
    info.port = CONTEXT_PORT_NO_LISTEN;
    info.protocols = client_protocols;
    info.gid = -1;
    info.uid = -1;
    info.user = &c;
    c.ctx = lws_create_context(&info);
    if (!c.ctx) {
        say("cannot create the libwebsockets context");
        rc = EXIT_FAIL;
        goto done;
    }
    g_ctx = c.ctx;
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESETHAND; /* a second ^C kills at once */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
    }

    snprintf(hosthdr, sizeof(hosthdr), "%s:%d", u.host, u.port);
    memset(&ci, 0, sizeof(ci));
    ci.context = c.ctx;
    ci.address = u.host;
    ci.port = u.port;
    ci.path = u.path;
    ci.host = hosthdr;
    ci.origin = NULL; /* not a browser: no Origin header */
    ci.protocol = NULL; /* the Realtime API names no subprotocol */
    ci.local_protocol_name = client_protocols[0].name;
    ci.pwsi = &c.wsi;
    c.ph = PH_CONNECTING;
    arm_reply_timeout(&c);
    if (!lws_client_connect_via_info(&ci) && c.ph != PH_DONE) {
        say("cannot connect to %s", o.url);
        c.exit_code = EXIT_CONNECT;
        c.ph = PH_DONE;
    }
    while (c.ph != PH_DONE)
        if (lws_service(c.ctx, 0) < 0) break;

    lws_sul_cancel(&c.sul_pace);
    lws_sul_cancel(&c.sul_timeout);
    lws_context_destroy(c.ctx);
    g_ctx = NULL;

    if (c.exit_code != EXIT_OK) {
        rc = c.exit_code;
    } else {
        rc = EXIT_OK;
        for (int i = 0; i < o.nfiles; i++) {
            const turn *t = &turns[i];
            if (strcmp(t->status, "completed") != 0 || (t->audio_bytes == 0 && t->reply.len == 0))
                rc = EXIT_FAIL;
        }
    }

done:
    if (c.wav) {
        size_t n = wav_writer_samples(c.wav);
        int rate = c.out_rate ? c.out_rate : 24000;
        if (wav_writer_close(c.wav, err, sizeof(err)) != 0) {
            say("%s: %s", o.output, err);
            if (rc == EXIT_OK) rc = EXIT_FAIL;
        } else if (!o.quiet && rc != EXIT_USAGE && rc != EXIT_CONNECT) {
            say("wrote %s: %.2f s at %d Hz", o.output, (double)n / rate, rate);
        }
    }
    queue_clear(&c);
    sbuf_free(&c.rx);
    for (int i = 0; turns && i < o.nfiles; i++) {
        sbuf_free(&turns[i].transcript);
        sbuf_free(&turns[i].reply);
    }
    for (int i = 0; wavs && i < o.nfiles; i++) wav_free(&wavs[i]);
    free(turns);
    free(wavs);
    return rc;
}
