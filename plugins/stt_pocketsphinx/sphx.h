/*
 * stt_pocketsphinx: offline streaming speech recognition, shared parts.
 *
 * One instance owns a pool of pocketsphinx decoders. A decoder holds its own
 * copy of the acoustic model, dictionary and language model (about 91 MB,
 * 0.3-0.6 s to create with the en-us model) and may be used by one thread at
 * a time, so a stream borrows one for its whole life: open() takes it from
 * the pool, close() gives it back. pool_size decoders are made at init; more
 * are made on demand up to pool_max; an open() that finds none within
 * pool_wait fails with VX_EUNAVAIL (retryable).
 *
 * A stream costs no thread: the instance has decoder_threads threads (one
 * per CPU by default; decoding is CPU work) that run the decoders of all its
 * streams. feed() only copies audio into the stream's queue and puts the
 * stream on the instance's run queue; a thread takes it, decodes a bounded
 * slice of its audio, delivers the events, and puts it back at the end of
 * the queue if more is waiting, so a stream with a long backlog cannot
 * starve the others and no two threads ever run one decoder. close() waits
 * until the stream is off the queue and not running, so no event fires
 * afterwards.
 *
 * Cepstral mean normalisation: the decoder normalises each utterance with
 * the mean of the speech before it (live CMN); a fresh decoder starts from
 * the model's prior (cmninit). When the audio is far from that mean, as
 * flite's 8 kHz voice is from the prior (the first "hello how are you" came
 * out "hello are you"), or a new caller's channel from the previous one's,
 * the first words are misheard. So a stream watches the running mean of
 * each utterance's speech: after restart_after of audio, then at twice and
 * four times that ... and at the utterance's end, while it is within
 * restart_window, it is compared with the mean in use; when they lie more
 * than cmn_restart apart, the decoder takes the running mean and the
 * utterance starts over on the audio kept so far. The restarts happen while
 * the caller is still talking; only one at the utterance's end delays its
 * final (once per new channel: later utterances start from the new mean).
 *
 * sphinxbase logs through one process-wide callback. The plugin installs it
 * with its first instance and routes each message to the host logger of the
 * instance whose decoder runs on the calling thread (a thread-local), so
 * nothing reaches stderr.
 */
#ifndef VX_SPHX_H
#define VX_SPHX_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <pocketsphinx.h>
#include <voxray/plugin.h>

#define SPHX_CMN_MAX_VEC 64 /* cepstral mean components read or written */

#define SPHX_VERSION "1.0.0"
#define SPHX_NAME "stt_pocketsphinx"

/* One provider instance. Everything above `mu` is read-only after init, so
 * streams read it without a lock; the pool below it is guarded by mu. */
typedef struct sphx_inst {
    const vx_host_api *api;
    vx_host *h;
    char **argv; /* decoder arguments after a program name, NULL-terminated */
    int argc;
    char *words; /* extra_args, cut into the words argv points to */
    uint32_t rate;         /* samplerate: the only rate open() accepts */
    size_t pool_size, pool_max;
    uint64_t pool_wait_ms;
    size_t partial_samples; /* audio between partial hypotheses; 0: none */
    size_t chunk_samples;   /* audio handed to the decoder per call */
    size_t queue_max;       /* samples a stream may hold undecoded */
    double cmn_restart;     /* cepstral mean distance that restarts an utterance; 0: none */
    size_t restart_after;   /* samples of an utterance before the mean is compared */
    size_t restart_window;  /* samples of an utterance kept to decode again */
    vx_metric *m_busy;      /* gauge: decoders lent to streams (NULL: none) */
    vx_metric *m_timeouts;  /* counter: opens that found no decoder in time */
    vx_metric *m_restarts;  /* counter: utterances decoded again (cmn_restart) */

    pthread_mutex_t mu;
    pthread_cond_t cv;   /* a decoder came back, or a waiter was cancelled */
    ps_decoder_t **idle; /* pool_max slots */
    size_t n_idle;
    size_t n_total; /* decoders alive or being created */
    /* The cepstral mean a fresh decoder starts from (the model's prior)
     * and the one a decoder last finished a heard utterance with (the
     * channel as it sounds lately); under mu. A decoder handed out still at
     * the prior starts from the learned mean instead, so that only the
     * process's first utterances pay the restart (sphx_stream.c). */
    float cmn_prior[SPHX_CMN_MAX_VEC], cmn_learned[SPHX_CMN_MAX_VEC];
    int cmn_len;      /* 0: the decoder's mean cannot be read */
    int cmn_learned_ok;

    /* The decoder threads (sphx_stream.c) and their run queue of streams
     * with work, guarded by rq_mu. A stream's lock may be held while taking
     * rq_mu, never the other way round. */
    size_t n_threads; /* decoder_threads, resolved */
    pthread_t *threads;
    size_t n_started;
    pthread_mutex_t rq_mu;
    pthread_cond_t rq_cv;
    struct vx_stream *rq_head, *rq_tail;
    int rq_stopping;
} sphx_inst;

/* stt_pocketsphinx.c */
void sphx_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) VX_PRINTF(4, 5);
/* Send the calling thread's sphinxbase messages to in's logger (NULL: drop
 * them). Returns the previous routing, to restore afterwards. */
sphx_inst *sphx_log_route(sphx_inst *in);
/* Take a decoder: an idle one, a new one while fewer than pool_max exist,
 * or the next one given back within pool_wait. *canceled is polled under
 * the pool lock; sphx_pool_wake() interrupts the wait to look at it again.
 * publish(arg) runs once, before the call first blocks (a wait or a decoder
 * creation), so the caller can make itself cancellable. Returns 0 with *out
 * set; VX_EUNAVAIL (retryable) when the pool stayed exhausted, VX_ECANCELED,
 * or VX_EINTERNAL when a new decoder cannot be created (err says why). */
int sphx_pool_take(sphx_inst *in, const atomic_int *canceled, void (*publish)(void *arg),
                   void *arg, ps_decoder_t **out, vx_error *err);
/* Give a decoder back (ps_end_utt already called); `broken` destroys it
 * instead, making room for a fresh one. heard: it finished an utterance
 * with a final, so its cepstral mean is the channel's (learned for fresh
 * decoders). */
void sphx_pool_give(sphx_inst *in, ps_decoder_t *ps, int broken, int heard);
void sphx_pool_wake(sphx_inst *in);

/* sphx_stream.c */
extern const vx_stt_vtable sphx_stt_vtable;
/* The cepstral mean the decoder normalises with: its length (at most max),
 * or 0 when it cannot be read. */
int sphx_cmn_get(ps_decoder_t *ps, float *out, int max);
/* Set it (n components, as sphx_cmn_get gave them). */
void sphx_cmn_set(ps_decoder_t *ps, const float *v, int n);
/* Start in->n_threads decoder threads. Returns VX_OK, or VX_ENOMEM with
 * err filled and nothing left running (sphx_threads_stop is then a no-op). */
int sphx_threads_start(sphx_inst *in, vx_error *err);
/* Stop and join them; no stream may be open. */
void sphx_threads_stop(sphx_inst *in);

#endif
