/*
 * sim: deterministic fake STT, LLM and TTS providers, shared parts.
 *
 * One instance ([plugin.NAME] with plugin = sim) is one provider that can
 * serve any of the three kinds. Every call (STT open, LLM generate, TTS
 * synthesize) takes a number from the instance's call counter; its fate
 * (fail or not) and all its randomness (jitter) come from a PRNG seeded by
 * the instance seed and that number, so the same seed and the same call
 * sequence behave the same whatever the thread timing.
 *
 * A stream costs no thread: the kind-specific files describe it as a
 * sequence of timed events (sim_kind_ops), and one job on the host's timer
 * (vx_host_api.defer_id) fires whatever is due, then queues itself again
 * for the next event. A stream has at most one such job; cancel() takes it
 * back to fire the cancellation at once, close() takes it back or waits for
 * it (defer_cancel with wait), so no event fires after close() returns.
 */
#ifndef VX_SIM_H
#define VX_SIM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <voxray/plugin.h>

#define SIM_VERSION "1.0.0"

enum { SIM_AT_START, SIM_AT_FIRST_OUTPUT, SIM_AT_MID_STREAM };
enum { SIM_HANG_NONE, SIM_HANG_SILENT, SIM_HANG_BLOCK, SIM_HANG_STALL };

typedef struct sim_rng {
    uint64_t s;
} sim_rng;

/* One provider instance. Everything but the counters is read-only after
 * init, so streams read it without a lock. */
typedef struct sim_inst {
    const vx_host_api *api;
    vx_host *h;
    uint64_t seed;
    uint64_t latency_ns, jitter_ns;
    double failure_rate;
    uint64_t fail_first;
    uint64_t fail_calls; /* bit n: call n+1 fails */
    int err_code, err_retryable, err_status; /* the simulated failure */
    const char *err_name;
    int fail_at; /* SIM_AT_* */
    int hang;    /* SIM_HANG_* */

    char **transcripts; /* STT: cycled per utterance; at least one */
    size_t n_transcripts;
    uint64_t partial_every_ms; /* 0: no partials */

    char *reply; /* LLM: "" is echo mode */
    uint64_t token_delay_ns;
    char *tool_name;    /* LLM: the function tool_call names, or NULL */
    char *tool_args;    /* its JSON arguments (NULL with tool_name) */
    char *tool_trigger; /* "": every user turn asks for the call */

    uint32_t sample_rate; /* TTS */
    uint32_t ms_per_char;
    uint32_t chunk_ms;
    int realtime;
    char *voice;

    atomic_uint_fast64_t calls;
    atomic_uint_fast64_t failures;
    atomic_uint_fast64_t utterances; /* STT: picks the next of `transcripts` */
    vx_metric *m_failures; /* NULL when the host offers no metrics */
} sim_inst;

/* What a call was dealt when it started. */
typedef struct sim_fate {
    uint64_t call; /* the call's number in its instance, from 0 */
    int fail;      /* it fails, where inst->fail_at says */
    sim_rng rng;   /* the call's own random stream */
} sim_fate;

/* The next event of a stream, as a kind's take() describes it. */
typedef struct sim_event {
    int terminal;  /* nothing follows it (done or error) */
    int error;     /* deliver err through on_error */
    vx_error err;  /* filled by the scheduler when error is set */
    uint64_t index; /* token or chunk number */
    void *node;    /* STT: the dequeued event, freed by deliver */
} sim_event;

struct vx_stream;

/* How a kind feeds the common scheduler. peek and take run with the
 * stream mutex held; deliver runs without it, on the host's timer thread. */
typedef struct sim_kind_ops {
    /* 1 and the due time (CLOCK_MONOTONIC ns) of the next event, or 0 when
     * none is known yet. */
    int (*peek)(struct vx_stream *s, uint64_t *due);
    /* Consume the event peek announced. */
    void (*take)(struct vx_stream *s, sim_event *ev);
    /* Fire the event's callback. */
    void (*deliver)(struct vx_stream *s, sim_event *ev);
    /* Free kind state; no job of the stream is queued or running. */
    void (*destroy)(struct vx_stream *s);
} sim_kind_ops;

/* The part of a stream every kind shares; each kind's own struct starts
 * with it. */
struct vx_stream {
    sim_inst *in;
    const sim_kind_ops *ops;
    sim_fate fate;
    pthread_mutex_t mu;
    pthread_cond_t cv;  /* hang = block waits for cancel, close for firing */
    uint64_t timer;     /* the queued job firing the next event, 0: none */
    uint64_t timer_due; /* when it is due (CLOCK_MONOTONIC ns) */
    int firing;         /* that job is delivering events */
    int hang_silent; /* produce nothing until cancelled */
    int canceled;
    int ended;   /* the terminal event was taken */
    int closing;
};

/* sim.c */
uint64_t sim_now_ns(void);
uint64_t sim_rng_next(sim_rng *r);
uint64_t sim_jitter_ns(sim_inst *in, sim_rng *r);
void sim_call_begin(sim_inst *in, sim_fate *f);
void sim_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) VX_PRINTF(4, 5);
void sim_fail_error(sim_inst *in, const sim_fate *f, vx_error *err);
int sim_fail_now(sim_inst *in, const sim_fate *f, vx_error *err);
int sim_stream_init(struct vx_stream *s, sim_inst *in, const sim_kind_ops *ops,
                    const sim_fate *f, vx_error *err);
int sim_stream_start(struct vx_stream *s, vx_error *err);
int sim_stream_block(struct vx_stream *s, vx_stream **out, vx_error *err);
int sim_stream_kick(struct vx_stream *s, vx_error *err);
void sim_stream_cancel(struct vx_stream *s);
void sim_stream_close(struct vx_stream *s);
size_t sim_count_words(const char *text);
size_t sim_prefix_len(const char *text, size_t words);

/* sim_stt.c, sim_llm.c, sim_tts.c */
extern const vx_stt_vtable sim_stt_vtable;
extern const vx_llm_vtable sim_llm_vtable;
extern const vx_tts_vtable sim_tts_vtable;

#endif
