/*
 * voxray-loadtest: drive many concurrent OpenAI Realtime sessions against a
 * voxray server from one process and report per-stage latencies, errors and
 * what the server spent.
 *
 * One epoll loop, one thread: every session is a small state machine
 * driven by its connection's events (lt_ws.c: TCP or TLS, wslay frames)
 * and by one timer each (lt_timer.c keeps them in a heap; one wake-up
 * serves every session due in the same millisecond). The audio is shared:
 * every session streams the same WAVs, and each 20 ms input_audio_buffer.
 * append message is encoded once, at start, for every session to send.
 *
 * A chunk is written as soon as it is due, from the timer. With
 * --send-interval above 20 ms a session instead wakes once per interval
 * and writes every chunk due by then in one system call (each still its
 * own 20 ms message). A session writes only while nothing of its earlier
 * output waits for the socket; otherwise it catches up once the socket
 * took it, so a frame is never split by another.
 *
 * Server messages are not all parsed: the top-level "type" is read from the
 * first bytes of each message, and only "error" and "response.done" are
 * reassembled and parsed with jansson (audio deltas, most of the traffic,
 * are counted and skipped without a look at their bytes).
 *
 * Times are CLOCK_MONOTONIC on this side of the socket.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/evp.h>

#include "cliutil.h"
#include "lt_metrics.h"
#include "lt_proc.h"
#include "lt_scan.h"
#include "lt_stats.h"
#include "lt_timer.h"
#include "lt_ws.h"
#include "wav.h"

#define PROG "voxray-loadtest"

#define EXIT_RAN 0
#define EXIT_NOCONN 1
#define EXIT_USAGE 2

#define CHUNK_PER_SEC 50            /* 20 ms appends */
#define CHUNK_MS (1000 / CHUNK_PER_SEC)
#define CLOSE_WAIT_US 5000000       /* the server's answer to our close */
#define LT_CLOSE_NORMAL 1000
#define SILENT_LEVEL 64             /* |sample| <= this is silence (about -54 dBFS) */
#define GEN_RATE 16000              /* the generated signal */
#define MAX_MESSAGE (16u << 20)     /* a larger parsed message is dropped */

/* ------------------------------------------------------------ options */

typedef struct opts {
    const char *url;
    int sessions;
    int turns;
    double ramp;            /* sessions started per second */
    const char *key;
    long pid;               /* 0: none */
    int json;
    int think_ms;
    double speed;
    double duration;        /* seconds, 0: none */
    double timeout;         /* seconds */
    int silence_ms;
    int out_rate;           /* reply audio rate to ask for, 0: the server's */
    int insecure;
    const char *metrics_url;/* NULL: derived from the URL */
    int have_prov;
    double prov[3];         /* --provider-latency, ms */
    int send_interval_ms;   /* a session writes its due chunks this often */
    char **files;
    int nfiles;
} opts;

/* ------------------------------------------------------------ state */

typedef enum sstate {
    ST_WAITING,     /* not connected yet (ramp) */
    ST_CONNECTING,
    ST_SETUP,       /* waiting for session.created, then session.updated */
    ST_TURN,        /* streaming a file and/or waiting for its reply */
    ST_THINK,       /* pause before the next turn */
    ST_CLOSING,
    ST_DONE
} sstate;

enum { RX_SCAN, RX_FULL, RX_SKIP };

enum { STAGE_DET, STAGE_STT, STAGE_LLM, STAGE_TTS, STAGE_E2E, STAGE_COUNT };
static const char *const stage_names[STAGE_COUNT] = {
    "turn_detection", "stt", "llm", "tts_start", "end_to_end"
};

typedef struct sess {
    lt_timer tm;
    lt_ws *ws;
    int id;
    sstate st;
    int got_created;
    int turns_done;         /* turns ended (ok or not) */
    int file;               /* WAV of the current turn */
    int established;
    int failed;             /* a session-level failure was counted */
    int64_t t_last_rx;      /* last server message (or connect) */
    int64_t t_established;

    /* current turn */
    size_t nchunks, next_chunk, eos_chunk;
    int64_t stream_t0;
    int64_t t_eos, t_stop, t_stt, t_llm, t_audio;
    unsigned turn_active : 1, stream_done : 1, reply_done : 1, resp_seen : 1, resp_final : 1;
    unsigned want_write : 1;

    /* message being received */
    int rx_mode;
    sbuf rx;
    char rx_type[64];
    int close_code;
} sess;

/* The input_audio_buffer.append messages of one WAV's chunks, encoded once:
 * chunk k is text + off[k] .. text + off[k + 1]. Chunks past the WAV's end
 * (the trailing silence) come from the shared silent messages. */
typedef struct wav_msgs {
    char *text;
    size_t *off;
    size_t n;               /* chunks holding samples of the WAV */
} wav_msgs;

typedef struct loadtest {
    opts o;
    wav_audio *wavs;
    int nwavs;
    size_t *eos;            /* per WAV: index of its last non-silent sample */
    int rate;
    wav_msgs *msgs;         /* per WAV */
    char **silent;          /* silent message by samples in the chunk, made when needed */
    size_t *silent_len;
    size_t max_chunk;       /* samples in the longest chunk */

    lt_ws_env *env;
    lt_timers *timers;
    sess *s;
    int64_t next_tick;
    int finished;           /* every session is done: leave the loop */

    int64_t t_start;
    int stopping;           /* no new turns: --duration passed or interrupted */
    int interrupted;

    unsigned char *le;      /* little-endian samples of one chunk (encoding) */
    char *update_msg;       /* session.update, identical for every session */
    size_t update_len;
    char auth[600];

    /* counters */
    int n_connected_ever, n_connected_now, n_done, n_failed, n_skipped;
    uint64_t turns_started, turns_ok, turns_failed, turns_lost;
    uint64_t chunks_sent, samples_sent, chunks_deferred;
    uint64_t audio_deltas, rx_messages, rx_bytes;
    int64_t lag_max;        /* us a chunk went out after it was due */
    uint64_t lag_sum, lag_over_20ms;
    double session_seconds; /* connected time summed over sessions */
    char first_conn_err[200];

    lt_samples stage[STAGE_COUNT];
    lt_errors errors;

    lt_proc proc;
    int have_proc;
    int tty;
    int64_t last_line;
} loadtest;

static loadtest g;
static volatile sig_atomic_t g_sigint;

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void say(const char *fmt, ...) {
    va_list ap;
    if (g.tty && g.last_line) fputc('\n', stderr); /* leave the progress line */
    g.last_line = 0;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static void sess_close(sess *s);
static void start_turn(sess *s);
static void count_done(void);
static void stream_feed(sess *s);

/* ------------------------------------------------------------ outcome */

/* The session ended before its turns: they count as failed (lost) unless
 * the run is stopping anyway. kind names the cause (counted once). */
static void sess_fail(sess *s, const char *kind) {
    if (kind) lt_errors_add(&g.errors, kind);
    if (!s->failed) {
        s->failed = 1;
        g.n_failed++;
    }
}

static void count_lost_turns(sess *s) {
    int left = g.o.turns - s->turns_done;
    if (left > 0 && !g.stopping) g.turns_lost += (uint64_t)left;
    s->turns_done = g.o.turns;
}

static void record(int stage, int64_t from, int64_t to) {
    if (from >= 0 && to >= 0) lt_samples_add(&g.stage[stage], to - from);
}

/* The reply of the current turn is over: kind NULL for a completed one,
 * else the error kind that failed it. */
static void end_turn(sess *s, const char *kind) {
    if (!s->turn_active || s->reply_done) return;
    s->reply_done = 1;
    s->turns_done++;
    record(STAGE_DET, s->t_eos, s->t_stop);
    if (s->t_stop >= 0) {
        record(STAGE_STT, s->t_stop, s->t_stt);
        record(STAGE_LLM, s->t_stop, s->t_llm);
        record(STAGE_TTS, s->t_stop, s->t_audio);
    }
    record(STAGE_E2E, s->t_eos, s->t_audio);
    if (kind) {
        g.turns_failed++;
        lt_errors_add(&g.errors, kind);
    } else {
        g.turns_ok++;
    }
}

/* Next turn after the think pause, once the reply is over and the file
 * (with its trailing silence) is out. */
static void maybe_next_turn(sess *s) {
    if (s->st != ST_TURN || !s->reply_done || !s->stream_done) return;
    s->turn_active = 0;
    if (s->turns_done >= g.o.turns || g.stopping) {
        sess_close(s);
        return;
    }
    s->st = ST_THINK;
    lt_timer_set(g.timers, &s->tm, cli_now_us() + (int64_t)g.o.think_ms * 1000);
}

/* ------------------------------------------------------------ sending */

static size_t chunk_start(size_t k) {
    return (size_t)((unsigned long long)k * (unsigned)g.rate / CHUNK_PER_SEC);
}

/* When chunk k is due: the moment its last sample would have been spoken,
 * scaled by --speed. */
static int64_t chunk_due(const sess *s, size_t k) {
    double sec = (double)chunk_start(k + 1) / g.rate;
    return s->stream_t0 + (int64_t)(sec * 1e6 / g.o.speed);
}

/* When chunk k goes out: when it is due, or with --send-interval at the
 * session's next wake-up at or after that (every interval from the start
 * of the stream). */
static int64_t chunk_sched(const sess *s, size_t k) {
    int64_t due = chunk_due(s, k), iv, d;
    if (g.o.send_interval_ms <= CHUNK_MS) return due;
    iv = (int64_t)((double)g.o.send_interval_ms * 1000.0 / g.o.speed);
    if (iv <= 0) return due;
    d = due - s->stream_t0;
    return s->stream_t0 + (d + iv - 1) / iv * iv;
}

static void send_update(sess *s) {
    if (lt_ws_send_text(s->ws, g.update_msg, g.update_len) != 0) {
        lt_ws_abort(s->ws, "out of memory");
        return;
    }
    lt_ws_flush(s->ws); /* a failure comes back as on_closed */
}

static const char append_prefix[] = "{\"type\":\"input_audio_buffer.append\",\"audio\":\"";
static const char append_suffix[] = "\"}";

/* Encode the append message of n samples, pcm[0..avail) and silence
 * after it (pcm may be NULL), into a new string. Returns its length, or 0
 * when out of memory (*out NULL). */
static size_t encode_chunk(const int16_t *pcm, size_t avail, size_t n, char **out) {
    size_t cap = sizeof(append_prefix) - 1 + 4 * ((2 * n + 2) / 3) + 1 + sizeof(append_suffix);
    char *m = malloc(cap), *p;
    int len;

    *out = NULL;
    if (!m) return 0;
    for (size_t i = 0; i < n; i++) {
        uint16_t v = pcm && i < avail ? (uint16_t)pcm[i] : 0;
        g.le[2 * i] = (unsigned char)(v & 0xff);
        g.le[2 * i + 1] = (unsigned char)(v >> 8);
    }
    memcpy(m, append_prefix, sizeof(append_prefix) - 1);
    p = m + sizeof(append_prefix) - 1;
    len = EVP_EncodeBlock((unsigned char *)p, g.le, (int)(2 * n));
    memcpy(p + len, append_suffix, sizeof(append_suffix)); /* with its NUL */
    *out = m;
    return (size_t)(p - m) + (size_t)len + sizeof(append_suffix) - 1;
}

/* The message of chunk k of WAV f (with its trailing silence), or NULL
 * when out of memory. */
static const char *chunk_msg(int f, size_t k, size_t *len) {
    const wav_audio *w = &g.wavs[f];
    size_t a = chunk_start(k), b = chunk_start(k + 1), n;
    size_t total = w->samples + (size_t)g.o.silence_ms * (size_t)g.rate / 1000;

    if (k < g.msgs[f].n) {
        *len = g.msgs[f].off[k + 1] - g.msgs[f].off[k];
        return g.msgs[f].text + g.msgs[f].off[k];
    }
    if (b > total) b = total;
    n = b - a;
    if (!g.silent[n]) g.silent_len[n] = encode_chunk(NULL, 0, n, &g.silent[n]);
    *len = g.silent_len[n];
    return g.silent[n];
}

/* Frame chunk next_chunk into the session's output. Returns 0, or -1 when
 * out of memory or the connection is gone. */
static int queue_chunk(sess *s, int64_t now) {
    const wav_audio *w = &g.wavs[s->file];
    size_t k = s->next_chunk, a = chunk_start(k), b = chunk_start(k + 1), len;
    size_t total = w->samples + (size_t)g.o.silence_ms * (size_t)g.rate / 1000;
    const char *m = chunk_msg(s->file, k, &len);
    int64_t sched = chunk_sched(s, k);

    if (!m || lt_ws_send_text(s->ws, m, len) != 0) return -1;
    if (b > total) b = total;
    if (now > sched) {
        int64_t lag = now - sched;
        g.lag_sum += (uint64_t)lag;
        if (lag > g.lag_max) g.lag_max = lag;
        if (lag > 20000) g.lag_over_20ms++;
    }
    g.chunks_sent++;
    g.samples_sent += b - a;
    if (k == s->eos_chunk) s->t_eos = now;
    s->next_chunk++;
    return 0;
}

/* Send every chunk that is due in one write, then sleep until the next
 * one. While earlier output still waits for the socket, nothing is added:
 * on_writable calls back here to catch up. */
static void stream_feed(sess *s) {
    int64_t now;
    int queued = 0;

    if (s->st != ST_TURN || s->stream_done || !s->ws) return;
    if (lt_ws_pending(s->ws)) {
        g.chunks_deferred++;
        s->want_write = 1;
        return;
    }
    now = cli_now_us();
    while (s->next_chunk < s->nchunks && chunk_sched(s, s->next_chunk) <= now + LT_TIMER_BATCH_US) {
        if (queue_chunk(s, now) != 0) {
            lt_ws_abort(s->ws, "out of memory");
            return;
        }
        queued = 1;
    }
    if (queued && lt_ws_flush(s->ws) < 0) return; /* on_closed follows */
    if (s->next_chunk < s->nchunks) {
        lt_timer_set(g.timers, &s->tm, chunk_sched(s, s->next_chunk));
        return;
    }
    s->stream_done = 1;
    maybe_next_turn(s);
}

static void start_turn(sess *s) {
    const wav_audio *w;
    size_t total, k, eos;

    if (s->turns_done >= g.o.turns || g.stopping) {
        sess_close(s);
        return;
    }
    s->file = (s->id + s->turns_done) % g.nwavs;
    w = &g.wavs[s->file];
    eos = g.eos[s->file];
    total = w->samples + (size_t)g.o.silence_ms * (size_t)g.rate / 1000;
    s->nchunks = (total * CHUNK_PER_SEC + (size_t)g.rate - 1) / (size_t)g.rate;
    /* The chunk holding sample eos: the last k with chunk_start(k) <= eos. */
    k = eos * CHUNK_PER_SEC / (size_t)g.rate;
    while (k + 1 < s->nchunks && chunk_start(k + 1) <= eos) k++;
    while (k > 0 && chunk_start(k) > eos) k--;
    s->eos_chunk = k;
    s->next_chunk = 0;
    s->stream_t0 = cli_now_us();
    s->t_eos = s->t_stop = s->t_stt = s->t_llm = s->t_audio = -1;
    s->turn_active = 1;
    s->stream_done = s->reply_done = s->resp_seen = s->resp_final = 0;
    s->st = ST_TURN;
    g.turns_started++;
    stream_feed(s);
}

/* Close with 1000 (the server answers, or the connection is dropped after
 * CLOSE_WAIT_US); a session not connected yet is simply done. */
static void sess_close(sess *s) {
    if (s->st == ST_CLOSING || s->st == ST_DONE) return;
    lt_timer_cancel(&s->tm);
    if (s->ws && s->established) {
        s->st = ST_CLOSING;
        lt_ws_close(s->ws, LT_CLOSE_NORMAL, "done");
        lt_timer_set(g.timers, &s->tm, cli_now_us() + CLOSE_WAIT_US);
        return;
    }
    if (s->st == ST_CONNECTING) {
        /* The attempt goes on; on_fail or on_open follow and see
         * ST_CLOSING. */
        s->st = ST_CLOSING;
        return;
    }
    s->st = ST_DONE;
    count_done();
}

/* ------------------------------------------------------------ receiving */


static int rx_append(sess *s, const void *in, size_t len) {
    if (s->rx.len + len + 1 > MAX_MESSAGE) return -1;
    return sbuf_add(&s->rx, in, len);
}

static int is_type(const char *type, const char *a, const char *b) {
    return strcmp(type, a) == 0 || (b && strcmp(type, b) == 0);
}

/* Does the event belong to the reply of the current turn? A response that
 * began before the end of the file answered a pause inside it. */
static int for_this_turn(const sess *s) {
    if (!s->turn_active || s->reply_done) return 0;
    return s->resp_seen ? s->resp_final : s->t_eos >= 0;
}

static void on_error_event(sess *s, const json_t *ev) {
    const json_t *e = json_object_get(ev, "error");
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *type = json_string_value(json_object_get(e, "type"));
    char kind[LT_KIND_LEN];

    snprintf(kind, sizeof(kind), "error:%s", code && *code ? code : type && *type ? type : "unknown");
    if (s->st == ST_SETUP) {
        /* An error before the first turn: session.update was refused in
         * part, and the audio would not be understood. */
        const char *msg = json_string_value(json_object_get(e, "message"));
        if (g.n_failed == 0) say("session set-up failed: %s", msg ? msg : kind);
        sess_fail(s, kind);
        count_lost_turns(s);
        sess_close(s);
        return;
    }
    lt_errors_add(&g.errors, kind);
}

static void on_response_done(sess *s, const json_t *ev) {
    const json_t *r = json_object_get(ev, "response");
    const json_t *det = json_object_get(r, "status_details");
    const char *status = json_string_value(json_object_get(r, "status"));
    const char *reason = json_string_value(json_object_get(det, "reason"));
    const char *code = json_string_value(json_object_get(json_object_get(det, "error"), "code"));
    int final = for_this_turn(s);
    char kind[LT_KIND_LEN];

    s->resp_seen = 0;
    if (!final) return;
    if (status && strcmp(status, "completed") == 0) {
        end_turn(s, NULL);
    } else {
        const char *why = reason ? reason : code;
        snprintf(kind, sizeof(kind), "response_%s%s%s", status ? status : "unknown",
                 why ? ":" : "", why ? why : "");
        end_turn(s, kind);
    }
    maybe_next_turn(s);
}

/* A message whose type is known, at the time its first bytes arrived. */
static void on_event(sess *s, const char *type, int64_t now) {
    g.rx_messages++;
    if (s->st == ST_SETUP) {
        if (!s->got_created) {
            if (strcmp(type, "session.created") != 0) return;
            s->got_created = 1;
            send_update(s);
        } else if (strcmp(type, "session.updated") == 0) {
            start_turn(s);
        }
        return;
    }
    if (s->st != ST_TURN || !s->turn_active || s->reply_done) return;

    if (strcmp(type, "input_audio_buffer.speech_started") == 0) {
        s->t_stop = -1;
    } else if (strcmp(type, "input_audio_buffer.speech_stopped") == 0) {
        s->t_stop = now;
    } else if (strcmp(type, "conversation.item.input_audio_transcription.completed") == 0) {
        if (s->t_stop >= 0 && s->t_stt < s->t_stop) s->t_stt = now;
    } else if (strcmp(type, "conversation.item.input_audio_transcription.failed") == 0) {
        /* voxray drops an utterance whose transcription failed (no
         * speech_stopped, no response), even when STT failed at its start:
         * the turn has failed. The rest of the file is still streamed. */
        end_turn(s, "transcription_failed");
        maybe_next_turn(s);
    } else if (strcmp(type, "response.created") == 0) {
        s->resp_seen = 1;
        s->resp_final = s->t_eos >= 0;
        if (s->resp_final) s->t_llm = s->t_audio = -1;
    } else if (is_type(type, "response.output_audio.delta", "response.audio.delta")) {
        g.audio_deltas++;
        if (for_this_turn(s)) {
            if (s->t_audio < 0) s->t_audio = now;
            if (s->t_llm < 0) s->t_llm = now;
        }
    } else if (is_type(type, "response.output_item.added", NULL) ||
               is_type(type, "response.output_audio_transcript.delta",
                       "response.audio_transcript.delta") ||
               is_type(type, "response.output_text.delta", "response.text.delta") ||
               is_type(type, "response.function_call_arguments.delta", NULL)) {
        /* voxray announces the reply's item on the LLM's first token; with
         * audio output the transcript waits for the audio. */
        if (for_this_turn(s) && s->t_llm < 0) s->t_llm = now;
    }
}

static int needs_parse(const char *type) {
    return strcmp(type, "error") == 0 || strcmp(type, "response.done") == 0;
}

static void on_full_message(sess *s) {
    json_error_t jerr;
    json_t *ev = json_loadb(s->rx.s, s->rx.len, 0, &jerr);
    const char *type = json_string_value(json_object_get(ev, "type"));

    if (!ev || !json_is_object(ev) || !type) {
        lt_errors_add(&g.errors, "bad_server_message");
        json_decref(ev);
        return;
    }
    if (strcmp(type, "error") == 0) {
        g.rx_messages++;
        on_error_event(s, ev);
    } else if (strcmp(type, "response.done") == 0) {
        g.rx_messages++;
        if (s->st == ST_TURN) on_response_done(s, ev);
    } else {
        on_event(s, type, cli_now_us());
    }
    json_decref(ev);
}

static void on_receive(sess *s, const char *in, size_t len, int first, int final, int binary) {
    int64_t now = cli_now_us();
    int r;

    g.rx_bytes += len;
    s->t_last_rx = now;
    if (first) {
        sbuf_reset(&s->rx);
        s->rx_mode = binary ? RX_SKIP : RX_SCAN;
    }
    if (s->rx_mode == RX_SCAN) {
        /* Usually the whole head is in the first fragment: read it there
         * without copying. */
        if (s->rx.len == 0) {
            r = lt_scan_type(in, len, s->rx_type, sizeof(s->rx_type));
        } else {
            if (rx_append(s, in, len) != 0) goto toolong;
            r = lt_scan_type(s->rx.s, s->rx.len, s->rx_type, sizeof(s->rx_type));
            in = NULL; /* already kept */
        }
        if (r == 1 && !needs_parse(s->rx_type)) {
            s->rx_mode = RX_SKIP;
            sbuf_reset(&s->rx);
            on_event(s, s->rx_type, now);
        } else if (r != 0) {
            s->rx_mode = RX_FULL; /* needs its content, or unreadable head */
            if (in && rx_append(s, in, len) != 0) goto toolong;
        } else if (in && rx_append(s, in, len) != 0) {
            goto toolong;
        }
    } else if (s->rx_mode == RX_FULL) {
        if (rx_append(s, in, len) != 0) goto toolong;
    }
    if (final) {
        if (s->rx_mode != RX_SKIP) on_full_message(s);
        sbuf_reset(&s->rx);
        s->rx_mode = RX_SCAN;
        /* Keep big buffers from piling up across thousands of sessions. */
        if (s->rx.cap > 65536) sbuf_free(&s->rx);
    }
    return;

toolong:
    lt_errors_add(&g.errors, "oversize_server_message");
    s->rx_mode = RX_SKIP;
    sbuf_reset(&s->rx);
}

/* ------------------------------------------------------------ connections */

static void on_closed(sess *s) {
    int64_t now = cli_now_us();
    if (s->established) {
        g.n_connected_now--;
        g.session_seconds += (double)(now - s->t_established) / 1e6;
    }
    s->ws = NULL;
    lt_timer_cancel(&s->tm);
    if (s->st != ST_CLOSING && s->st != ST_DONE && !g.interrupted) {
        char kind[LT_KIND_LEN];
        if (s->close_code)
            snprintf(kind, sizeof(kind), "closed_early:%d", s->close_code);
        else
            snprintf(kind, sizeof(kind), "closed_early");
        if (s->turn_active && !s->reply_done) {
            end_turn(s, kind);
            sess_fail(s, NULL);
        } else {
            sess_fail(s, kind);
        }
        count_lost_turns(s);
    }
    if (s->st != ST_DONE) {
        s->st = ST_DONE;
        count_done();
    }
}

static void ws_on_open(lt_ws *c, void *user) {
    sess *s = user;
    (void)c;
    s->established = 1;
    s->t_established = s->t_last_rx = cli_now_us();
    g.n_connected_ever++;
    g.n_connected_now++;
    if (s->st == ST_CLOSING) { /* stopped while connecting */
        s->st = ST_CONNECTING;
        sess_close(s);
        return;
    }
    s->st = ST_SETUP;
}

static void ws_on_fail(lt_ws *c, void *user, unsigned status, const char *why) {
    sess *s = user;
    char kind[LT_KIND_LEN];
    (void)c;
    if (status)
        snprintf(kind, sizeof(kind), "http_%u", status);
    else
        snprintf(kind, sizeof(kind), "connect_failed");
    if (!g.first_conn_err[0]) {
        if (status)
            snprintf(g.first_conn_err, sizeof(g.first_conn_err), "HTTP status %u (%s)", status, why);
        else
            snprintf(g.first_conn_err, sizeof(g.first_conn_err), "%s", why);
    }
    s->ws = NULL;
    lt_timer_cancel(&s->tm);
    if (!g.interrupted) {
        sess_fail(s, kind);
        count_lost_turns(s);
    }
    if (s->st != ST_DONE) {
        s->st = ST_DONE;
        count_done();
    }
}

static void ws_on_data(lt_ws *c, void *user, const char *p, size_t n, int first, int final,
                       int binary) {
    (void)c;
    on_receive(user, p, n, first, final, binary);
}

static void ws_on_writable(lt_ws *c, void *user) {
    sess *s = user;
    (void)c;
    if (s->want_write) {
        s->want_write = 0;
        stream_feed(s);
    }
}

static void ws_on_closed(lt_ws *c, void *user, int code) {
    sess *s = user;
    (void)c;
    s->close_code = code;
    on_closed(s);
}

static const lt_ws_handlers ws_handlers = {ws_on_open, ws_on_fail, ws_on_data, ws_on_writable,
                                           ws_on_closed};

static void sess_connect(sess *s) {
    char err[160];

    s->st = ST_CONNECTING;
    s->t_last_rx = cli_now_us();
    s->ws = lt_ws_connect(g.env, s, err, sizeof(err));
    if (!s->ws) {
        /* Failed before anything was sent (no descriptor, no memory). */
        if (!g.first_conn_err[0])
            snprintf(g.first_conn_err, sizeof(g.first_conn_err), "cannot start a connection: %s",
                     err);
        sess_fail(s, "connect_failed");
        count_lost_turns(s);
        s->st = ST_DONE;
        count_done();
    }
}

static void on_timer(lt_timer *t) {
    sess *s = (sess *)((char *)t - offsetof(sess, tm));
    switch (s->st) {
    case ST_WAITING:
        if (g.stopping) {
            g.n_skipped++;
            s->st = ST_DONE;
            count_done();
            break;
        }
        sess_connect(s);
        break;
    case ST_TURN:
        stream_feed(s);
        break;
    case ST_THINK:
        start_turn(s);
        break;
    case ST_CLOSING:
        /* The server did not answer our close: drop the connection. */
        if (s->ws) lt_ws_abort(s->ws, NULL);
        break;
    default:
        break;
    }
}

/* Every session done: the loop ends after this pass. */
static void count_done(void) {
    g.n_done++;
    if (g.n_done == g.o.sessions) g.finished = 1;
}

/* ------------------------------------------------------------ progress */

static double ms(double us) {
    return us / 1000.0;
}

static void progress_line(int64_t now, int final) {
    lt_samples *e2e = &g.stage[STAGE_E2E];
    char srv[128] = "";
    double el = (double)(now - g.t_start) / 1e6;

    if (!final) {
        if (g.tty) {
            if (now - g.last_line < 1000000 && g.last_line) return;
        } else if (g.last_line && now - g.last_line < 5000000) {
            return;
        }
    }
    lt_samples_sort(e2e);
    if (g.have_proc)
        snprintf(srv, sizeof(srv), " | server %.0f%% CPU, %.0f MiB, %d threads%s", g.proc.cpu_now,
                 (double)g.proc.rss_now / 1048576.0, g.proc.threads_now,
                 g.proc.alive ? "" : " (gone)");
    fprintf(stderr,
            "%s[%5.0fs] sessions %d connected, %d active, %d done | turns %llu ok, %llu failed | "
            "e2e p50 %.0f ms, p95 %.0f ms%s%s",
            g.tty ? "\r" : "", el, g.n_connected_ever, g.n_connected_now, g.n_done,
            (unsigned long long)g.turns_ok, (unsigned long long)(g.turns_failed + g.turns_lost),
            ms(lt_samples_pct(e2e, 50)), ms(lt_samples_pct(e2e, 95)), srv,
            g.tty ? "\033[K" : "\n");
    fflush(stderr);
    g.last_line = now;
}

static void stop_run(const char *why) {
    if (g.stopping) return;
    g.stopping = 1;
    if (why) say("%s: finishing the turns under way", why);
    for (int i = 0; i < g.o.sessions; i++) {
        sess *s = &g.s[i];
        if (s->st == ST_WAITING) {
            lt_timer_cancel(&s->tm);
            g.n_skipped++;
            s->st = ST_DONE;
            count_done();
        } else if (s->st == ST_THINK || (g.interrupted && s->st != ST_DONE)) {
            sess_close(s);
        }
    }
}

/* Once a second, and at once after a signal. */
static void on_tick(int64_t now) {
    int64_t to = (int64_t)(g.o.timeout * 1e6);

    if (g_sigint && !g.interrupted) {
        g.interrupted = 1;
        say("interrupted");
        stop_run(NULL);
    }
    if (g.o.duration > 0 && !g.stopping && now - g.t_start >= (int64_t)(g.o.duration * 1e6))
        stop_run("--duration reached");
    /* Timeouts: nothing from the server for --timeout seconds while
     * something is expected. */
    for (int i = 0; i < g.o.sessions; i++) {
        sess *s = &g.s[i];
        int64_t since = s->t_last_rx;
        int waiting = 0;
        if (s->st == ST_SETUP) waiting = 1;
        if (s->st == ST_TURN && s->t_eos >= 0 && !s->reply_done) {
            waiting = 1;
            if (s->t_eos > since) since = s->t_eos;
        }
        if (s->st == ST_CONNECTING) waiting = 2;
        if (!waiting || now - since < to) continue;
        if (waiting == 2) {
            /* Connecting (TCP, TLS, upgrade) took too long: on_fail
             * counts it as connect_failed. */
            if (s->ws) lt_ws_abort(s->ws, "timed out connecting");
            continue;
        }
        if (s->st == ST_TURN) {
            end_turn(s, "timeout");
            sess_fail(s, NULL);
        } else {
            sess_fail(s, "timeout");
        }
        count_lost_turns(s);
        sess_close(s);
    }
    if (g.have_proc && g.proc.alive && lt_proc_sample(&g.proc) != 0)
        say("process %ld is gone: server figures stop here", g.o.pid);
    progress_line(now, 0);
}

/* The signal interrupts epoll_wait(); the loop sees the flag. */
static void on_signal(int sig) {
    (void)sig;
    g_sigint = 1;
}

/* The loop: socket events, then the timers due, then the tick. */
static void run_loop(void) {
    g.next_tick = g.t_start + 1000000;
    while (!g.finished) {
        int64_t now = cli_now_us(), wake = g.next_tick, next = lt_timers_next(g.timers);
        int timeout;
        if (next >= 0 && next < wake) wake = next;
        timeout = wake <= now ? 0 : (int)((wake - now + 999) / 1000);
        if (g_sigint && !g.interrupted) timeout = 0;
        lt_ws_wait(g.env, timeout);
        now = cli_now_us();
        lt_timers_run(g.timers, now);
        if (now >= g.next_tick || (g_sigint && !g.interrupted)) {
            on_tick(now);
            if (now >= g.next_tick) g.next_tick = now + 1000000;
        }
    }
}

/* ------------------------------------------------------------ report */

static json_t *stage_json(lt_samples *st, uint64_t turns) {
    lt_samples_sort(st);
    return json_pack("{s:I, s:f, s:f, s:f, s:f, s:f, s:f}", "count", (json_int_t)st->n,
                     "mean", ms(lt_samples_mean(st)), "p50", ms(lt_samples_pct(st, 50)),
                     "p90", ms(lt_samples_pct(st, 90)), "p95", ms(lt_samples_pct(st, 95)),
                     "p99", ms(lt_samples_pct(st, 99)),
                     "success_fraction", turns ? (double)st->n / (double)turns : 0.0);
}

typedef struct srvm {
    int ok;
    char why[1600];
    double count[LT_M_COUNT], mean[LT_M_COUNT];
} srvm;

static uint64_t turns_total(void) {
    return g.turns_ok + g.turns_failed + g.turns_lost;
}

static void report(FILE *f, const srvm *sm, double wall, double cpu) {
    uint64_t total = turns_total();
    double audio_s = g.rate ? (double)g.samples_sent / g.rate : 0;
    static const char *const prov_names[3] = {"stt", "llm", "tts_start"};
    double prov_cum[3];

    fprintf(f, "\n%s: %d sessions (%d connected, %d failed, %d not started), %d turns each, "
               "%.1f s\n",
            PROG, g.o.sessions, g.n_connected_ever, g.n_failed, g.n_skipped, g.o.turns, wall);
    fprintf(f, "turns: %llu ok of %llu (%.1f%%), %llu failed, %llu lost with their session\n",
            (unsigned long long)g.turns_ok, (unsigned long long)total,
            total ? 100.0 * (double)g.turns_ok / (double)total : 0.0,
            (unsigned long long)g.turns_failed, (unsigned long long)g.turns_lost);
    fprintf(f, "%-15s %7s %9s %9s %9s %9s %9s   (ms)\n", "stage", "count", "mean", "p50", "p90",
            "p95", "p99");
    for (int i = 0; i < STAGE_COUNT; i++) {
        lt_samples *st = &g.stage[i];
        lt_samples_sort(st);
        fprintf(f, "%-15s %7zu %9.1f %9.1f %9.1f %9.1f %9.1f\n", stage_names[i], st->n,
                ms(lt_samples_mean(st)), ms(lt_samples_pct(st, 50)), ms(lt_samples_pct(st, 90)),
                ms(lt_samples_pct(st, 95)), ms(lt_samples_pct(st, 99)));
    }
    if (g.errors.n) {
        fprintf(f, "errors:");
        for (int i = 0; i < g.errors.n; i++)
            fprintf(f, " %s=%llu", g.errors.e[i].kind, (unsigned long long)g.errors.e[i].count);
        fputc('\n', f);
    } else {
        fprintf(f, "errors: none\n");
    }
    if (g.o.have_prov) {
        prov_cum[0] = g.o.prov[0];
        prov_cum[1] = prov_cum[0] + g.o.prov[1];
        prov_cum[2] = prov_cum[1] + g.o.prov[2];
        fprintf(f, "host added (measured mean - configured provider latency from speech_stopped):");
        for (int i = 0; i < 3; i++)
            if (g.stage[STAGE_STT + i].n)
                fprintf(f, " %s %.1f ms", prov_names[i],
                        ms(lt_samples_mean(&g.stage[STAGE_STT + i])) - prov_cum[i]);
        fputc('\n', f);
    }
    if (sm->ok) {
        fprintf(f, "server /metrics during the run (mean):");
        for (int i = 0; i < LT_M_COUNT; i++)
            if (sm->count[i] > 0)
                fprintf(f, " %s %.1f ms (%.0f)", lt_metric_names[i], sm->mean[i] * 1000,
                        sm->count[i]);
        fputc('\n', f);
    } else {
        fprintf(f, "server /metrics: %s\n", sm->why);
    }
    if (g.have_proc)
        fprintf(f, "server process %ld: CPU %.1f%% mean, %.1f%% max; RSS max %.1f MiB; "
                   "threads max %d\n",
                g.o.pid, lt_proc_cpu_mean(&g.proc), g.proc.cpu_max,
                (double)g.proc.rss_max / 1048576.0, g.proc.threads_max);
    fprintf(f, "load generator: %.2f s CPU (%.1f%% of one core), %.1f s of audio sent, "
               "%.3f ms CPU per session-second of audio, %.3f ms per connected session-second "
               "(%.0f s); writes every %d ms; chunk lateness mean %.2f ms, max %.1f ms, "
               "%llu over 20 ms\n",
            cpu, wall > 0 ? 100.0 * cpu / wall : 0.0, audio_s,
            audio_s > 0 ? cpu * 1000.0 / audio_s : 0.0,
            g.session_seconds > 0 ? cpu * 1000.0 / g.session_seconds : 0.0, g.session_seconds,
            g.o.send_interval_ms,
            g.chunks_sent ? ms((double)g.lag_sum / (double)g.chunks_sent) : 0.0, ms((double)g.lag_max),
            (unsigned long long)g.lag_over_20ms);
}

static json_t *report_json(const srvm *sm, double wall, double cpu) {
    uint64_t total = turns_total();
    double audio_s = g.rate ? (double)g.samples_sent / g.rate : 0;
    json_t *o = json_object(), *errs = json_object();
    static const char *const prov_names[3] = {"stt", "llm", "tts_start"};

    if (!o || !errs) goto fail;
    for (int i = 0; i < g.errors.n; i++)
        json_object_set_new(errs, g.errors.e[i].kind, json_integer((json_int_t)g.errors.e[i].count));
    json_object_set_new(o, "sessions", json_integer(g.o.sessions));
    json_object_set_new(o, "sessions_connected", json_integer(g.n_connected_ever));
    json_object_set_new(o, "sessions_failed", json_integer(g.n_failed));
    json_object_set_new(o, "sessions_not_started", json_integer(g.n_skipped));
    json_object_set_new(o, "turns_planned", json_integer((json_int_t)g.o.sessions * g.o.turns));
    json_object_set_new(o, "turns_total", json_integer((json_int_t)total));
    json_object_set_new(o, "turns_ok", json_integer((json_int_t)g.turns_ok));
    json_object_set_new(o, "turns_failed", json_integer((json_int_t)g.turns_failed));
    json_object_set_new(o, "turns_lost", json_integer((json_int_t)g.turns_lost));
    json_object_set_new(o, "success_fraction",
                        json_real(total ? (double)g.turns_ok / (double)total : 0.0));
    json_object_set_new(o, "errors", errs);
    errs = NULL;
    for (int i = 0; i < STAGE_COUNT; i++)
        json_object_set_new(o, stage_names[i], stage_json(&g.stage[i], total));
    if (g.o.have_prov) {
        json_t *h = json_object();
        double cum = 0;
        for (int i = 0; i < 3; i++) {
            cum += g.o.prov[i];
            if (g.stage[STAGE_STT + i].n)
                json_object_set_new(h, prov_names[i],
                                    json_real(ms(lt_samples_mean(&g.stage[STAGE_STT + i])) - cum));
        }
        json_object_set_new(o, "host_added", h);
    }
    if (sm->ok) {
        json_t *m = json_object();
        for (int i = 0; i < LT_M_COUNT; i++)
            json_object_set_new(m, lt_metric_names[i],
                                json_pack("{s:f, s:f}", "count", sm->count[i], "mean",
                                          sm->count[i] > 0 ? sm->mean[i] * 1000 : 0.0));
        json_object_set_new(o, "server_metrics", m);
    } else {
        json_object_set_new(o, "server_metrics", json_null());
        json_object_set_new(o, "server_metrics_error", json_string(sm->why));
    }
    if (g.have_proc) {
        json_object_set_new(o, "server_cpu_percent_mean", json_real(lt_proc_cpu_mean(&g.proc)));
        json_object_set_new(o, "server_cpu_percent_max", json_real(g.proc.cpu_max));
        json_object_set_new(o, "server_rss_max_bytes", json_integer((json_int_t)g.proc.rss_max));
        json_object_set_new(o, "server_threads_max", json_integer(g.proc.threads_max));
    }
    json_object_set_new(o, "wall_seconds", json_real(wall));
    json_object_set_new(o, "audio_seconds_sent", json_real(audio_s));
    json_object_set_new(o, "session_seconds", json_real(g.session_seconds));
    json_object_set_new(o, "loadgen_cpu_seconds", json_real(cpu));
    json_object_set_new(o, "loadgen_cpu_ms_per_audio_second",
                        json_real(audio_s > 0 ? cpu * 1000.0 / audio_s : 0.0));
    json_object_set_new(o, "loadgen_cpu_ms_per_session_second",
                        json_real(g.session_seconds > 0 ? cpu * 1000.0 / g.session_seconds : 0.0));
    json_object_set_new(o, "send_interval_ms", json_integer(g.o.send_interval_ms));
    json_object_set_new(o, "loadgen_chunk_late_max_ms", json_real(ms((double)g.lag_max)));
    json_object_set_new(o, "loadgen_chunks_late_over_20ms", json_integer((json_int_t)g.lag_over_20ms));
    json_object_set_new(o, "messages_received", json_integer((json_int_t)g.rx_messages));
    json_object_set_new(o, "bytes_received", json_integer((json_int_t)g.rx_bytes));
    json_object_set_new(o, "chunks_sent", json_integer((json_int_t)g.chunks_sent));
    return o;

fail:
    json_decref(o);
    json_decref(errs);
    return NULL;
}

/* ------------------------------------------------------------ command line */

static void usage(FILE *f) {
    fprintf(f,
"usage: " PROG " -u URL -n SESSIONS -t TURNS [options] [WAV...]\n"
"\n"
"Open SESSIONS concurrent OpenAI Realtime sessions on a voxray server and\n"
"have TURNS spoken turns in each: every turn streams a WAV in real time in\n"
"20 ms input_audio_buffer.append chunks, then silence so that the server's\n"
"VAD ends the turn, waits for the reply (response.done), pauses, and goes on.\n"
"One process, one thread, one epoll loop for all sessions.\n"
"\n"
"  -u, --url URL          ws://HOST[:PORT]/PATH, or wss:// (TLS)\n"
"  -n, --sessions N       concurrent sessions (1..100000)\n"
"  -t, --turns N          turns per session (1..1000000)\n"
"      --ramp PER_S       sessions started per second (default: all of them\n"
"                         spread over the first second)\n"
"      --key KEY          API key, sent as \"Authorization: Bearer KEY\"\n"
"                         (default: $VOXRAY_API_KEY)\n"
"      --pid PID          sample that process (the server) every second from\n"
"                         /proc: CPU %%, RSS and threads\n"
"      --json             human output to stderr; the last line of stdout is\n"
"                         one JSON object (fields below)\n"
"      --think MS         pause between the end of a reply and the next turn\n"
"                         (default 500)\n"
"      --speed X          stream the audio X times faster than real time\n"
"                         (default 1)\n"
"      --duration S       start no new turn after S seconds, then finish\n"
"      --timeout S        a turn (or the set-up) fails with \"timeout\" when no\n"
"                         server event arrives for S seconds (default 30);\n"
"                         also the connect timeout\n"
"      --silence MS       silence streamed after each WAV (default 700)\n"
"      --send-interval MS write a session's audio every MS ms (20..1000,\n"
"                         default 20): each write carries every 20 ms\n"
"                         append message due by then, so a chunk reaches\n"
"                         the server up to MS - 20 ms after it was spoken,\n"
"                         in bursts, as from a client that buffers; fewer\n"
"                         system calls let one core drive more sessions.\n"
"                         The default writes each chunk when it is due, as\n"
"                         a live microphone does\n"
"      --output-rate HZ   ask for reply audio at HZ (audio/pcm, 8000..48000;\n"
"                         default: the server's, 24000): 8000 is what a phone\n"
"                         bridge asks for, and a third of the bytes to read\n"
"      --provider-latency STT_MS,LLM_MS,TTS_MS\n"
"                         latencies configured on the (sim) providers: report\n"
"                         host_added = measured mean - configured, for stt,\n"
"                         llm (minus STT+LLM) and tts_start (minus all three)\n"
"      --metrics URL      the server's Prometheus page (default: http://HOST:PORT\n"
"                         /metrics of the ws URL; https for wss); read at start\n"
"                         and end for the server's own mean per stage\n"
"      --insecure         wss: accept self-signed, expired or misnamed\n"
"                         certificates (also for an https --metrics page)\n"
"  -h, --help             show this help\n"
"      --version          show the version\n"
"\n"
"WAV: 16-bit PCM, mono (stereo is downmixed), all at one rate, declared in\n"
"session.update (server VAD). Turn k of session i streams file (i + k) mod\n"
"count. Without a file, a generated speech-like signal is used: 0.3 s of\n"
"silence and a 1 s amplitude-modulated 220 Hz tone at 16 kHz.\n"
"\n"
"Stages, per turn, in ms, measured here with the monotonic clock:\n"
"  turn_detection  end of speech sent (the chunk with the file's last sample\n"
"                  over |%d|) -> input_audio_buffer.speech_stopped\n"
"  stt             speech_stopped -> ...input_audio_transcription.completed\n"
"  llm             speech_stopped -> the reply's first output: its\n"
"                  response.output_item.added (voxray announces the item on\n"
"                  the LLM's first token) or a text/transcript delta\n"
"  tts_start       speech_stopped -> first response.output_audio.delta\n"
"  end_to_end      end of speech sent -> first response.output_audio.delta\n"
"Beta event names (response.audio.delta, ...) are accepted too. Every\n"
"sample is kept (uint32 microseconds); percentiles are exact (nearest rank,\n"
"sorted samples). A stage counts the turns where both its marks were seen,\n"
"failed turns included; its success_fraction is that count / turns_total.\n"
"\n"
"A turn is ok when its response.done says \"completed\". Errors by kind:\n"
"connect_failed, http_STATUS (upgrade refused), error:CODE (error events),\n"
"response_STATUS[:REASON] (incomplete, failed, cancelled),\n"
"transcription_failed, timeout, closed_early[:CODE]. A session that fails\n"
"loses its remaining turns: they count in turns_total as failed\n"
"(turns_lost). Turns not started because of --duration or ^C do not count.\n"
"\n"
"Progress: one line a second on stderr (overwritten on a terminal, else a\n"
"line every 5 s): sessions connected/active/done, turns ok/failed, end to\n"
"end p50/p95 so far, and the server's CPU, RSS and threads with --pid.\n"
"\n"
"JSON fields: sessions, sessions_connected, sessions_failed,\n"
"sessions_not_started, turns_planned, turns_total, turns_ok, turns_failed,\n"
"turns_lost, success_fraction, errors {kind: count}, turn_detection, stt,\n"
"llm, tts_start, end_to_end (each {count, mean, p50, p90, p95, p99,\n"
"success_fraction}, ms), host_added {stt, llm, tts_start} (with\n"
"--provider-latency), server_metrics {family: {count, mean}} or null with\n"
"server_metrics_error, server_cpu_percent_mean, server_cpu_percent_max,\n"
"server_rss_max_bytes, server_threads_max (with --pid), wall_seconds,\n"
"audio_seconds_sent, session_seconds, loadgen_cpu_seconds (getrusage),\n"
"loadgen_cpu_ms_per_audio_second, loadgen_cpu_ms_per_session_second (per\n"
"second of connected session), send_interval_ms, loadgen_chunk_late_max_ms,\n"
"loadgen_chunks_late_over_20ms (the generator falling behind the time\n"
"each chunk was to be written),\n"
"messages_received, bytes_received (WebSocket payload), chunks_sent.\n"
"\n"
"Environment: VOXRAY_API_KEY (see --key).\n"
"\n"
"Exit status: 0 the test ran (even if turns failed), 1 no session could\n"
"connect at all, 2 usage error or unreadable WAV.\n", SILENT_LEVEL);
}

enum { OPT_RAMP = 256, OPT_KEY, OPT_PID, OPT_JSON, OPT_THINK, OPT_SPEED, OPT_DURATION,
       OPT_TIMEOUT, OPT_SILENCE, OPT_OUTRATE, OPT_PROV, OPT_METRICS, OPT_INSECURE, OPT_VERSION,
       OPT_SEND_INTERVAL };

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    va_list ap;
    fputs(PROG ": ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputs("\nTry '" PROG " --help'.\n", stderr);
    return EXIT_USAGE;
}

/* Returns 0, EXIT_USAGE after saying why, or -1 after --help/--version. */
static int parse_args(int argc, char **argv, opts *o) {
    static const struct option longopts[] = {
        {"url", required_argument, NULL, 'u'},
        {"sessions", required_argument, NULL, 'n'},
        {"turns", required_argument, NULL, 't'},
        {"ramp", required_argument, NULL, OPT_RAMP},
        {"key", required_argument, NULL, OPT_KEY},
        {"pid", required_argument, NULL, OPT_PID},
        {"json", no_argument, NULL, OPT_JSON},
        {"think", required_argument, NULL, OPT_THINK},
        {"speed", required_argument, NULL, OPT_SPEED},
        {"duration", required_argument, NULL, OPT_DURATION},
        {"timeout", required_argument, NULL, OPT_TIMEOUT},
        {"silence", required_argument, NULL, OPT_SILENCE},
        {"output-rate", required_argument, NULL, OPT_OUTRATE},
        {"provider-latency", required_argument, NULL, OPT_PROV},
        {"metrics", required_argument, NULL, OPT_METRICS},
        {"insecure", no_argument, NULL, OPT_INSECURE},
        {"send-interval", required_argument, NULL, OPT_SEND_INTERVAL},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, OPT_VERSION},
        {NULL, 0, NULL, 0}
    };
    cli_ws_url u;
    int ch, pid;

    memset(o, 0, sizeof(*o));
    o->think_ms = 500;
    o->speed = 1;
    o->timeout = 30;
    o->silence_ms = 700;
    o->send_interval_ms = CHUNK_MS;
    o->key = getenv("VOXRAY_API_KEY");
    while ((ch = getopt_long(argc, argv, "u:n:t:h", longopts, NULL)) != -1) {
        switch (ch) {
        case 'u': o->url = optarg; break;
        case 'n':
            if (cli_parse_int(optarg, 1, 100000, &o->sessions) != 0)
                return usage_error("-n: expected sessions from 1 to 100000, got \"%s\"", optarg);
            break;
        case 't':
            if (cli_parse_int(optarg, 1, 1000000, &o->turns) != 0)
                return usage_error("-t: expected turns from 1 to 1000000, got \"%s\"", optarg);
            break;
        case OPT_RAMP:
            if (cli_parse_double(optarg, 0.001, 1e6, &o->ramp) != 0)
                return usage_error("--ramp: expected sessions per second (> 0), got \"%s\"", optarg);
            break;
        case OPT_KEY: o->key = optarg; break;
        case OPT_PID:
            if (cli_parse_int(optarg, 1, 0x7fffffff, &pid) != 0)
                return usage_error("--pid: expected a process id, got \"%s\"", optarg);
            o->pid = pid;
            break;
        case OPT_JSON: o->json = 1; break;
        case OPT_THINK:
            if (cli_parse_int(optarg, 0, 3600000, &o->think_ms) != 0)
                return usage_error("--think: expected milliseconds from 0 to 3600000, got \"%s\"",
                                   optarg);
            break;
        case OPT_SPEED:
            if (cli_parse_double(optarg, 0.01, 100, &o->speed) != 0)
                return usage_error("--speed: expected a factor from 0.01 to 100, got \"%s\"", optarg);
            break;
        case OPT_DURATION:
            if (cli_parse_double(optarg, 0.001, 1e7, &o->duration) != 0)
                return usage_error("--duration: expected seconds (> 0), got \"%s\"", optarg);
            break;
        case OPT_TIMEOUT:
            if (cli_parse_double(optarg, 0.1, 86400, &o->timeout) != 0)
                return usage_error("--timeout: expected seconds from 0.1 to 86400, got \"%s\"",
                                   optarg);
            break;
        case OPT_SILENCE:
            if (cli_parse_int(optarg, 0, 600000, &o->silence_ms) != 0)
                return usage_error("--silence: expected milliseconds from 0 to 600000, got \"%s\"",
                                   optarg);
            break;
        case OPT_OUTRATE:
            if (cli_parse_int(optarg, 8000, 48000, &o->out_rate) != 0)
                return usage_error("--output-rate: expected 8000 to 48000 Hz, got \"%s\"", optarg);
            break;
        case OPT_PROV: {
            char extra;
            if (sscanf(optarg, "%lf,%lf,%lf%c", &o->prov[0], &o->prov[1], &o->prov[2], &extra) != 3 ||
                !(o->prov[0] >= 0 && o->prov[1] >= 0 && o->prov[2] >= 0))
                return usage_error("--provider-latency: expected STT_MS,LLM_MS,TTS_MS, got \"%s\"",
                                   optarg);
            o->have_prov = 1;
            break;
        }
        case OPT_METRICS: o->metrics_url = optarg; break;
        case OPT_INSECURE: o->insecure = 1; break;
        case OPT_SEND_INTERVAL:
            if (cli_parse_int(optarg, CHUNK_MS, 1000, &o->send_interval_ms) != 0)
                return usage_error("--send-interval: expected milliseconds from 20 to 1000, got \"%s\"",
                                   optarg);
            break;
        case 'h': usage(stdout); return -1;
        case OPT_VERSION: printf(PROG " (" PACKAGE_NAME ") " PACKAGE_VERSION "\n"); return -1;
        default:
            fputs("Try '" PROG " --help'.\n", stderr);
            return EXIT_USAGE;
        }
    }
    if (!o->url) return usage_error("-u URL is required");
    if (!o->sessions) return usage_error("-n SESSIONS is required");
    if (!o->turns) return usage_error("-t TURNS is required");
    if (cli_split_ws_url(o->url, &u) != 0)
        return usage_error("-u: cannot use \"%s\" (expected ws://HOST[:PORT]/PATH or wss://...)",
                           o->url);
    if (o->key && !*o->key) o->key = NULL;
    if (!o->ramp) o->ramp = o->sessions; /* all of them within a second */
    o->files = argv + optind;
    o->nfiles = argc - optind;
    return 0;
}

static size_t last_voiced(const wav_audio *w) {
    for (size_t i = w->samples; i > 0; i--)
        if (abs(w->pcm[i - 1]) > SILENT_LEVEL) return i - 1;
    return w->samples ? w->samples - 1 : 0;
}

/* 0.3 s of silence, then 1 s of a 220 Hz tone whose loudness swings at
 * 4 Hz between 20 % and 60 % of full scale, like syllables. */
static int generate_signal(wav_audio *w) {
    size_t lead = GEN_RATE * 3 / 10, n = lead + GEN_RATE;
    w->pcm = calloc(n, sizeof(*w->pcm));
    if (!w->pcm) return -1;
    for (size_t i = lead; i < n; i++) {
        double t = (double)(i - lead) / GEN_RATE;
        double env = 0.4 + 0.2 * sin(2 * M_PI * 4 * t);
        w->pcm[i] = (int16_t)lrint(32767.0 * env * sin(2 * M_PI * 220 * t));
    }
    w->samples = n;
    w->rate = GEN_RATE;
    w->channels = 1;
    return 0;
}

static int load_inputs(void) {
    char err[256];
    g.nwavs = g.o.nfiles ? g.o.nfiles : 1;
    g.wavs = calloc((size_t)g.nwavs, sizeof(*g.wavs));
    g.eos = calloc((size_t)g.nwavs, sizeof(*g.eos));
    if (!g.wavs || !g.eos) {
        say("out of memory");
        return -1;
    }
    if (!g.o.nfiles) {
        if (generate_signal(&g.wavs[0]) != 0) {
            say("out of memory");
            return -1;
        }
    }
    for (int i = 0; i < g.o.nfiles; i++) {
        if (wav_read(g.o.files[i], &g.wavs[i], err, sizeof(err)) != 0) {
            say("%s: %s", g.o.files[i], err);
            return -1;
        }
        if (g.wavs[i].samples == 0) {
            say("%s: no audio samples", g.o.files[i]);
            return -1;
        }
        if (g.wavs[i].rate < 8000 || g.wavs[i].rate > 48000) {
            say("%s: %d Hz; the Realtime API takes 8000 to 48000 Hz", g.o.files[i], g.wavs[i].rate);
            return -1;
        }
        if (i > 0 && g.wavs[i].rate != g.wavs[0].rate) {
            say("%s: %d Hz, but %s is %d Hz; a session has one input rate", g.o.files[i],
                g.wavs[i].rate, g.o.files[0], g.wavs[0].rate);
            return -1;
        }
    }
    g.rate = g.wavs[0].rate;
    for (int i = 0; i < g.nwavs; i++) g.eos[i] = last_voiced(&g.wavs[i]);
    return 0;
}

/* The append messages of every chunk that holds samples of a WAV, encoded
 * once for all sessions (the trailing silence is encoded when first
 * needed, one message per chunk length). */
static int encode_wavs(void) {
    size_t silence = (size_t)g.o.silence_ms * (size_t)g.rate / 1000;
    g.msgs = calloc((size_t)g.nwavs, sizeof(*g.msgs));
    g.silent = calloc(g.max_chunk + 1, sizeof(*g.silent));
    g.silent_len = calloc(g.max_chunk + 1, sizeof(*g.silent_len));
    if (!g.msgs || !g.silent || !g.silent_len) return -1;
    for (int f = 0; f < g.nwavs; f++) {
        const wav_audio *w = &g.wavs[f];
        wav_msgs *m = &g.msgs[f];
        sbuf text = {0};
        size_t n = 0;
        while (chunk_start(n) < w->samples) n++;
        m->off = malloc((n + 1) * sizeof(*m->off));
        if (!m->off) return -1;
        for (size_t k = 0; k < n; k++) {
            size_t a = chunk_start(k), b = chunk_start(k + 1), c;
            char *one;
            if (b > w->samples + silence) b = w->samples + silence;
            c = encode_chunk(w->pcm + a, w->samples - a, b - a, &one);
            m->off[k] = text.len;
            if (!one || sbuf_add(&text, one, c) != 0) {
                free(one);
                sbuf_free(&text);
                return -1;
            }
            free(one);
        }
        m->off[n] = text.len;
        m->text = text.s; /* owned by m now */
        m->n = n;
    }
    return 0;
}

/* The session.update text is the same for every session. */
static int prepare_messages(void) {
    size_t samples = (size_t)g.rate / CHUNK_PER_SEC + 2;
    json_t *ev = json_pack("{s:s, s:{s:s, s:[s], s:{s:{s:{s:s, s:i}, s:{s:s}}}}}", "type",
                           "session.update", "session", "type", "realtime", "output_modalities",
                           "audio", "audio", "input", "format", "type", "audio/pcm", "rate",
                           g.rate, "turn_detection", "type", "server_vad");
    if (ev && g.o.out_rate)
        json_object_set_new(json_object_get(json_object_get(ev, "session"), "audio"), "output",
                            json_pack("{s:{s:s, s:i}}", "format", "type", "audio/pcm", "rate",
                                      g.o.out_rate));
    g.update_msg = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (!g.update_msg) return -1;
    g.update_len = strlen(g.update_msg);
    g.max_chunk = samples;
    g.le = malloc(samples * 2);
    if (!g.le || encode_wavs() != 0) return -1;
    if (g.o.key) {
        int n = snprintf(g.auth, sizeof(g.auth), "Bearer %s", g.o.key);
        if (n < 0 || (size_t)n >= sizeof(g.auth)) {
            say("the API key is too long");
            return -1;
        }
    }
    return 0;
}

/* /metrics of the server behind a ws URL: same host and port. */
static void metrics_url(char *out, size_t len) {
    cli_ws_url u;
    if (g.o.metrics_url) {
        snprintf(out, len, "%s", g.o.metrics_url);
        return;
    }
    cli_split_ws_url(g.o.url, &u);
    snprintf(out, len, "%s://%s%s%s:%d/metrics", u.tls ? "https" : "http",
             strchr(u.host, ':') ? "[" : "", u.host, strchr(u.host, ':') ? "]" : "", u.port);
}

int main(int argc, char **argv) {
    struct rlimit rl;
    struct rusage ru;
    lt_metrics *m0 = NULL, *m1 = NULL;
    srvm sm;
    char murl[1200], err[256];
    int rc;
    double wall, cpu;

    memset(&sm, 0, sizeof(sm));
    rc = parse_args(argc, argv, &g.o);
    if (rc) return rc < 0 ? EXIT_RAN : rc;
    g.tty = isatty(STDERR_FILENO);
    if (load_inputs() != 0) {
        rc = EXIT_USAGE;
        goto done;
    }
    if (prepare_messages() != 0) {
        say("out of memory");
        rc = EXIT_USAGE;
        goto done;
    }

    /* One descriptor per session, and a few of our own. */
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY &&
        rl.rlim_cur < (rlim_t)g.o.sessions + 32)
        say("warning: %llu open files allowed (hard limit), fewer than %d sessions need; "
            "raise it (ulimit -Hn)", (unsigned long long)rl.rlim_cur, g.o.sessions);

    if (g.o.pid) {
        if (lt_proc_open(&g.proc, (pid_t)g.o.pid, err, sizeof(err)) != 0) {
            say("--pid %ld: %s", g.o.pid, err);
            rc = EXIT_USAGE;
            goto done;
        }
        g.have_proc = 1;
    }

    curl_global_init(CURL_GLOBAL_DEFAULT);
    metrics_url(murl, sizeof(murl));
    m0 = lt_metrics_fetch(murl, g.o.insecure, err, sizeof(err));
    if (!m0) {
        snprintf(sm.why, sizeof(sm.why), "%s not readable (%s): skipped", murl, err);
        say("%s", sm.why);
    }

    g.s = calloc((size_t)g.o.sessions, sizeof(*g.s));
    if (!g.s) {
        say("out of memory for %d sessions", g.o.sessions);
        rc = EXIT_USAGE;
        goto done;
    }

    g.env = lt_ws_env_new(g.o.url, g.o.insecure, g.auth[0] ? g.auth : NULL, &ws_handlers, err,
                          sizeof(err));
    if (!g.env) {
        say("no session could connect to %s: %s", g.o.url, err);
        rc = EXIT_NOCONN;
        goto done;
    }
    g.timers = lt_timers_new(on_timer);
    if (!g.timers) {
        say("out of memory");
        rc = EXIT_NOCONN;
        goto done;
    }
    {
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = on_signal;
        sa.sa_flags = SA_RESETHAND; /* a second ^C kills at once */
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGTERM, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
    }

    g.t_start = cli_now_us();
    for (int i = 0; i < g.o.sessions; i++) {
        sess *s = &g.s[i];
        s->id = i;
        s->st = ST_WAITING;
        if (lt_timer_set(g.timers, &s->tm, g.t_start + (int64_t)((double)i * 1e6 / g.o.ramp)) != 0) {
            say("out of memory");
            rc = EXIT_NOCONN;
            goto done;
        }
    }
    run_loop();
    wall = (double)(cli_now_us() - g.t_start) / 1e6;
    if (g.have_proc && g.proc.alive) lt_proc_sample(&g.proc);
    progress_line(cli_now_us(), 1);
    if (g.tty) fputc('\n', stderr);
    g.last_line = 0;

    if (m0) {
        m1 = lt_metrics_fetch(murl, g.o.insecure, err, sizeof(err));
        if (!m1) {
            snprintf(sm.why, sizeof(sm.why), "%s not readable at the end (%s): skipped", murl, err);
        } else {
            sm.ok = 1;
            for (int i = 0; i < LT_M_COUNT; i++)
                sm.count[i] = lt_metrics_delta(m0, m1, i, &sm.mean[i]);
        }
    }
    getrusage(RUSAGE_SELF, &ru);
    cpu = (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
          (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;

    report(g.o.json ? stderr : stdout, &sm, wall, cpu);
    if (g.o.json) {
        json_t *o = report_json(&sm, wall, cpu);
        char *text = o ? json_dumps(o, JSON_COMPACT | JSON_REAL_PRECISION(6)) : NULL;
        if (text)
            printf("%s\n", text);
        else
            say("out of memory printing the JSON summary");
        free(text);
        json_decref(o);
    }
    fflush(stdout);
    if (g.n_connected_ever == 0 && g.n_skipped < g.o.sessions) {
        say("no session could connect to %s: %s", g.o.url,
            g.first_conn_err[0] ? g.first_conn_err : "unknown error");
        rc = EXIT_NOCONN;
    } else {
        rc = EXIT_RAN;
    }

done:
    if (g.s)
        for (int i = 0; i < g.o.sessions; i++) {
            lt_timer_cancel(&g.s[i].tm);
            sbuf_free(&g.s[i].rx);
        }
    lt_ws_env_free(g.env);
    lt_timers_free(g.timers);
    lt_metrics_free(m0);
    lt_metrics_free(m1);
    curl_global_cleanup();
    for (int i = 0; g.wavs && i < g.nwavs; i++) wav_free(&g.wavs[i]);
    for (int i = 0; i < STAGE_COUNT; i++) lt_samples_free(&g.stage[i]);
    free(g.wavs);
    free(g.eos);
    free(g.s);
    for (int i = 0; g.msgs && i < g.nwavs; i++) {
        free(g.msgs[i].text);
        free(g.msgs[i].off);
    }
    free(g.msgs);
    for (size_t n = 0; g.silent && n <= g.max_chunk; n++) free(g.silent[n]);
    free(g.silent);
    free(g.silent_len);
    free(g.le);
    free(g.update_msg);
    return rc;
}
