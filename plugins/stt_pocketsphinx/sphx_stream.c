/*
 * stt_pocketsphinx streams: one borrowed decoder each, run by the instance's
 * decoder threads (see sphx.h).
 *
 * feed() copies the audio into fixed-size blocks of chunk_samples (the only
 * copy) and returns; a decoder thread hands each block, once full, to
 * ps_process_raw() straight from the queue. finish() closes the current
 * block and marks the end of the utterance there, so audio fed after a
 * finish, even before its final is out, belongs to the next utterance. The
 * decoder starts an utterance lazily at its first audio, asks for the
 * hypothesis every partial_interval of audio and sends it as a partial when
 * it changed, and at the mark ends the utterance and sends the final; an
 * utterance without audio is final "" without touching the decoder.
 *
 * cancel() makes the stream drop what is queued and send on_error
 * (VX_ECANCELED), unless every finish already had its final and no audio
 * came since. A decoder error ends the stream with on_error(VX_EINTERNAL)
 * and the decoder is destroyed at close instead of going back to the pool.
 */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <sphinxbase/cmn.h>
#include <sphinxbase/feat.h>

#include "sphx.h"

#define SPHX_SPARE_BLOCKS 4 /* recycled blocks a stream keeps */
/* Blocks (100-200 ms of audio each) a decoder thread decodes for one
 * stream before it serves the next one in the run queue. */
#define SPHX_SLICE 5
/* Frames (10 ms each) of an utterance's speech before its mean is trusted. */
#define SPHX_CMN_MIN_FRAMES 10

typedef struct sphx_block {
    struct sphx_block *next;
    size_t n;      /* samples in pcm */
    int eou;       /* the utterance ends after these samples */
    int16_t pcm[]; /* chunk_samples */
} sphx_block;

struct vx_stream {
    sphx_inst *in;
    vx_stt_events ev;
    ps_decoder_t *ps;
    int bestpath; /* the decoder computes posteriors: finals get a confidence */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* close() waits here for the stream to be unscheduled */
    atomic_int canceled;

    /* Guarded by mu. The tail takes more audio until it is full or marked;
     * every other block is ready for the decoder. */
    int opened;              /* open() succeeded: events may fire */
    int scheduled;           /* on the run queue or being run */
    struct vx_stream *next;  /* run queue link (rq_mu) */
    sphx_block *head, *tail, *spare;
    size_t n_spare;
    size_t queued; /* samples in the queue */
    int closing;
    int ended;              /* on_error decided: nothing more is delivered */
    int failed;             /* the decoder failed: refuse further calls */
    unsigned long finishes; /* finish() calls */
    unsigned long finals;   /* finals decided (delivered or about to be) */
    int fed;                /* audio since the last finish() */

    /* The running decoder thread's alone (and close()'s once unscheduled). */
    int in_utt;
    int broken;
    size_t utt_samples, next_partial;
    int cmn_done;     /* this utterance is past the window: no more checks */
    size_t cmn_next;  /* its audio at the next check */
    int16_t *kept;    /* its audio so far while it may be restarted */
    size_t kept_cap;
    char *partial, *text; /* last partial sent; scratch for a hypothesis */
    size_t partial_cap, text_cap;
};

/* ---------------------------------------------------------------- text */

static int sphx_filler(const char *w, size_t n) {
    return (n >= 2 && w[0] == '<' && w[n - 1] == '>') ||
           (n >= 2 && w[0] == '[' && w[n - 1] == ']') || (n >= 4 && strncmp(w, "++", 2) == 0);
}

/* The hypothesis as the transcript: words lowercased and single-spaced,
 * fillers (<s>, </s>, <sil>, [NOISE], ++NOISE++) dropped, and the variant
 * marks of alternative pronunciations ("hello(2)") removed. Into s->text;
 * returns -1 when out of memory. */
static int sphx_clean(struct vx_stream *s, const char *hyp) {
    size_t need = hyp ? strlen(hyp) + 1 : 1, len = 0;
    const char *p = hyp;

    if (need > s->text_cap) {
        char *t = realloc(s->text, need);
        if (!t) return -1;
        s->text = t;
        s->text_cap = need;
    }
    while (p && *p) {
        const char *w;
        size_t n;

        while (*p == ' ') p++;
        for (w = p; *p && *p != ' '; p++)
            ;
        n = (size_t)(p - w);
        if (n >= 3 && w[n - 1] == ')') {
            size_t k = n - 2;
            while (k > 0 && isdigit((unsigned char)w[k])) k--;
            if (k > 0 && k < n - 2 && w[k] == '(') n = k;
        }
        if (n == 0 || sphx_filler(w, n)) continue;
        if (len) s->text[len++] = ' ';
        for (size_t i = 0; i < n; i++) s->text[len++] = (char)tolower((unsigned char)w[i]);
    }
    s->text[len] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- queue */

/* A block for feed(); mutex held. NULL when out of memory. */
static sphx_block *sphx_block_get(struct vx_stream *s) {
    sphx_block *b = s->spare;

    if (b) {
        s->spare = b->next;
        s->n_spare--;
    } else if (!(b = malloc(sizeof(*b) + s->in->chunk_samples * sizeof(int16_t)))) {
        return NULL;
    }
    b->next = NULL;
    b->n = 0;
    b->eou = 0;
    if (s->tail) s->tail->next = b;
    else s->head = b;
    s->tail = b;
    return b;
}

static void sphx_block_put(struct vx_stream *s, sphx_block *b) {
    if (s->n_spare < SPHX_SPARE_BLOCKS) {
        b->next = s->spare;
        s->spare = b;
        s->n_spare++;
    } else {
        free(b);
    }
}

/* 1 when the head block is complete (full or marked); mutex held. */
static int sphx_has_ready(const struct vx_stream *s) {
    const sphx_block *b = s->head;

    return b && !(b == s->tail && !b->eou && b->n < s->in->chunk_samples);
}

/* The head block if the decoder may take it; mutex held. */
static sphx_block *sphx_ready(struct vx_stream *s) {
    sphx_block *b = s->head;

    if (!sphx_has_ready(s)) return NULL;
    s->head = b->next;
    if (!s->head) s->tail = NULL;
    s->queued -= b->n;
    return b;
}

static void sphx_drop_queue(struct vx_stream *s) {
    sphx_block *b;

    while ((b = s->head)) {
        s->head = b->next;
        sphx_block_put(s, b);
    }
    s->tail = NULL;
    s->queued = 0;
}

/* ---------------------------------------------------------------- decoding */

/* End the stream with on_error unless it already ended; decoder thread. */
static void sphx_fail(struct vx_stream *s, int code, const char *what) {
    vx_error err = {0};
    int fire;

    pthread_mutex_lock(&s->mu);
    fire = !s->ended;
    s->ended = s->failed = 1;
    sphx_drop_queue(s);
    pthread_mutex_unlock(&s->mu);
    if (!fire) return;
    if (code == VX_ENOMEM) sphx_seterr(&err, code, 1, SPHX_NAME ": out of memory %s", what);
    else sphx_seterr(&err, code, 0, SPHX_NAME ": decoder failed in %s", what);
    s->in->api->log(s->in->h, VX_LOG_ERROR, "%s", err.msg);
    s->ev.on_error(s->ev.user, &err);
}

/* Send the hypothesis as a partial if it changed. */
static void sphx_partial(struct vx_stream *s) {
    int32 score;
    const char *hyp = ps_get_hyp(s->ps, &score);
    size_t n;

    if (!hyp || sphx_clean(s, hyp) != 0 || !*s->text) return; /* try again next time */
    if (s->partial && strcmp(s->partial, s->text) == 0) return;
    n = strlen(s->text) + 1;
    if (n > s->partial_cap) {
        char *p = realloc(s->partial, n);
        if (!p) return;
        s->partial = p;
        s->partial_cap = n;
    }
    memcpy(s->partial, s->text, n);
    if (!atomic_load(&s->canceled)) s->ev.on_partial(s->ev.user, s->partial);
}

/* End the utterance and send its final, unless cancel() got there first. */
static void sphx_final(struct vx_stream *s) {
    const char *text = "";
    float conf = -1;
    int32 score;
    int fire;

    if (s->in_utt) {
        s->in_utt = 0;
        if (ps_end_utt(s->ps) < 0) {
            s->broken = 1;
            sphx_fail(s, VX_EINTERNAL, "ps_end_utt");
            return;
        }
        if (sphx_clean(s, ps_get_hyp(s->ps, &score)) != 0) {
            sphx_fail(s, VX_ENOMEM, "copying the transcript");
            return;
        }
        text = s->text;
        if (*text && s->bestpath) {
            conf = (float)logmath_exp(ps_get_logmath(s->ps), ps_get_prob(s->ps));
            if (!(conf >= 0)) conf = 0;
            if (conf > 1) conf = 1;
        }
    }
    if (s->partial) s->partial[0] = '\0';
    pthread_mutex_lock(&s->mu);
    fire = !s->ended && !atomic_load(&s->canceled);
    if (fire) s->finals++;
    pthread_mutex_unlock(&s->mu);
    if (fire) s->ev.on_final(s->ev.user, text, conf);
}

/* Keep a block of the current utterance for a restart (see sphx.h); past
 * the window, or out of memory, the utterance goes on without one. */
static void sphx_keep(struct vx_stream *s, const int16_t *pcm, size_t n) {
    size_t need = s->utt_samples + n;

    if (s->cmn_done) return;
    if (need > s->in->restart_window) {
        s->cmn_done = 1;
        return;
    }
    if (need > s->kept_cap) {
        size_t cap = s->kept_cap ? s->kept_cap : s->in->chunk_samples * 4;
        int16_t *k;
        while (cap < need) cap *= 2;
        if (cap > s->in->restart_window) cap = s->in->restart_window;
        if (!(k = realloc(s->kept, cap * sizeof(*k)))) {
            s->cmn_done = 1;
            return;
        }
        s->kept = k;
        s->kept_cap = cap;
    }
    memcpy(s->kept + s->utt_samples, pcm, n * sizeof(*pcm));
}

/* Compare the running mean of the utterance's speech with the mean the
 * decoder normalises with; when they lie more than cmn_restart apart, take
 * the running mean and decode the utterance again from its start. Returns
 * -1 when the decoder failed (the stream has ended). */
static int sphx_cmn_check(struct vx_stream *s) {
    sphx_inst *in = s->in;
    feat_t *f = ps_get_feat(s->ps);
    cmn_t *cm = f ? f->cmn_struct : NULL;
    mfcc_t est[SPHX_CMN_MAX_VEC];
    double d2 = 0;
    size_t off;

    if (!cm || !cm->sum || !cm->cmn_mean || cm->veclen <= 0 || cm->veclen > SPHX_CMN_MAX_VEC ||
        cm->nframe < SPHX_CMN_MIN_FRAMES)
        return 0;
    for (int i = 0; i < cm->veclen; i++) {
        double e = MFCC2FLOAT(cm->sum[i]) / cm->nframe, d = e - MFCC2FLOAT(cm->cmn_mean[i]);
        est[i] = FLOAT2MFCC(e);
        d2 += d * d;
    }
    if (sqrt(d2) <= in->cmn_restart) return 0;
    if (in->m_restarts) in->api->metric_add(in->m_restarts, 1);
    if (in->api->log_enabled(in->h, VX_LOG_DEBUG))
        in->api->log(in->h, VX_LOG_DEBUG,
                     "utterance restarted after %zu ms: its cepstral mean lies %.1f from the "
                     "decoder's",
                     s->utt_samples * 1000 / in->rate, sqrt(d2));
    if (ps_end_utt(s->ps) < 0) goto broken;
    /* The utterance's frames are counted again as it is decoded again. */
    for (int i = 0; i < cm->veclen; i++) {
        cm->cmn_mean[i] = est[i];
        cm->sum[i] = 0;
    }
    cm->nframe = 0;
    if (ps_start_utt(s->ps) < 0) goto broken;
    for (off = 0; off < s->utt_samples; off += in->chunk_samples) {
        size_t n = s->utt_samples - off < in->chunk_samples ? s->utt_samples - off
                                                              : in->chunk_samples;
        if (ps_process_raw(s->ps, s->kept + off, n, 0, 0) < 0) goto broken;
    }
    return 0;
broken:
    s->in_utt = 0;
    s->broken = 1;
    sphx_fail(s, VX_EINTERNAL, "restarting an utterance");
    return -1;
}

int sphx_cmn_get(ps_decoder_t *ps, float *out, int max) {
    feat_t *f = ps_get_feat(ps);
    cmn_t *cm = f ? f->cmn_struct : NULL;

    if (!cm || !cm->cmn_mean || cm->veclen <= 0 || cm->veclen > max) return 0;
    for (int i = 0; i < cm->veclen; i++) out[i] = MFCC2FLOAT(cm->cmn_mean[i]);
    return cm->veclen;
}

void sphx_cmn_set(ps_decoder_t *ps, const float *v, int n) {
    feat_t *f = ps_get_feat(ps);
    cmn_t *cm = f ? f->cmn_struct : NULL;
    mfcc_t vec[SPHX_CMN_MAX_VEC];

    if (!cm || !cm->cmn_mean || !cm->sum || cm->veclen != n || n > SPHX_CMN_MAX_VEC) return;
    for (int i = 0; i < n; i++) vec[i] = FLOAT2MFCC(v[i]);
    /* The mean, and a running sum that gives it the weight of CMN_WIN
     * frames (5 s of speech): what a new utterance adds moves it slowly, so
     * a channel like the learned one is not restarted for the noise of its
     * first few hundred ms. */
    cmn_live_set(cm, vec);
}

/* Decode one block taken from the queue. */
static void sphx_process(struct vx_stream *s, sphx_block *b) {
    sphx_inst *in = s->in;

    if (b->n) {
        if (!s->in_utt) {
            if (ps_start_utt(s->ps) < 0) {
                s->broken = 1;
                sphx_fail(s, VX_EINTERNAL, "ps_start_utt");
                return;
            }
            s->in_utt = 1;
            s->utt_samples = 0;
            s->next_partial = in->partial_samples;
            s->cmn_done = in->cmn_restart <= 0;
            s->cmn_next = in->restart_after ? in->restart_after : 1;
        }
        sphx_keep(s, b->pcm, b->n);
        if (ps_process_raw(s->ps, b->pcm, b->n, 0, 0) < 0) {
            s->broken = 1;
            sphx_fail(s, VX_EINTERNAL, "ps_process_raw");
            return;
        }
        s->utt_samples += b->n;
        if (!s->cmn_done && s->utt_samples >= s->cmn_next) {
            while (s->cmn_next <= s->utt_samples) s->cmn_next *= 2;
            if (sphx_cmn_check(s) < 0) return;
        }
        if (in->partial_samples && s->utt_samples >= s->next_partial) {
            while (s->next_partial <= s->utt_samples) s->next_partial += in->partial_samples;
            sphx_partial(s);
        }
    }
    if (b->eou) {
        if (s->in_utt && !s->cmn_done && sphx_cmn_check(s) < 0) return;
        sphx_final(s);
    }
}

/* Work is waiting: a cancel to deliver, or a complete block. Mutex held. */
static int sphx_has_work(const struct vx_stream *s) {
    if (s->closing || s->ended) return 0;
    return atomic_load(&s->canceled) || sphx_has_ready(s);
}

/* Put s on the run queue unless it is there or running. s's mutex held. */
static void sphx_schedule(struct vx_stream *s) {
    sphx_inst *in = s->in;

    if (s->scheduled || !sphx_has_work(s)) return;
    s->scheduled = 1;
    s->next = NULL;
    pthread_mutex_lock(&in->rq_mu);
    if (in->rq_tail) in->rq_tail->next = s;
    else in->rq_head = s;
    in->rq_tail = s;
    pthread_cond_signal(&in->rq_cv);
    pthread_mutex_unlock(&in->rq_mu);
}

/* One turn of a stream on a decoder thread: at most SPHX_SLICE blocks, then
 * back to the end of the queue if more is waiting. */
static void sphx_run(struct vx_stream *s) {
    sphx_block *b;

    pthread_mutex_lock(&s->mu);
    for (int n = 0; n < SPHX_SLICE && !s->closing; n++) {
        if (atomic_load(&s->canceled) && !s->ended) {
            /* Finished: every finish had its final and no audio came since. */
            int finished = s->finals > 0 && s->finals == s->finishes && !s->fed;
            s->ended = 1;
            sphx_drop_queue(s);
            if (!finished) {
                vx_error err = {0};
                sphx_seterr(&err, VX_ECANCELED, 0, SPHX_NAME ": cancelled");
                pthread_mutex_unlock(&s->mu);
                s->ev.on_error(s->ev.user, &err);
                pthread_mutex_lock(&s->mu);
            }
            continue;
        }
        if (s->ended || !(b = sphx_ready(s))) break;
        pthread_mutex_unlock(&s->mu);
        sphx_process(s, b);
        pthread_mutex_lock(&s->mu);
        sphx_block_put(s, b);
    }
    s->scheduled = 0;
    sphx_schedule(s);
    /* close() waits for this; after the unlock s may be freed. */
    if (!s->scheduled && s->closing) pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

static void *sphx_thread(void *arg) {
    sphx_inst *in = arg;
    struct vx_stream *s;

    sphx_log_route(in);
    pthread_mutex_lock(&in->rq_mu);
    for (;;) {
        if (!(s = in->rq_head)) {
            if (in->rq_stopping) break;
            pthread_cond_wait(&in->rq_cv, &in->rq_mu);
            continue;
        }
        in->rq_head = s->next;
        if (!in->rq_head) in->rq_tail = NULL;
        pthread_mutex_unlock(&in->rq_mu);
        sphx_run(s);
        pthread_mutex_lock(&in->rq_mu);
    }
    pthread_mutex_unlock(&in->rq_mu);
    return NULL;
}

int sphx_threads_start(sphx_inst *in, vx_error *err) {
    in->n_started = 0;
    in->rq_stopping = 0;
    if (!(in->threads = calloc(in->n_threads, sizeof(*in->threads)))) goto oom;
    if (pthread_mutex_init(&in->rq_mu, NULL) != 0) goto oom;
    if (pthread_cond_init(&in->rq_cv, NULL) != 0) {
        pthread_mutex_destroy(&in->rq_mu);
        goto oom;
    }
    for (; in->n_started < in->n_threads; in->n_started++) {
        if (pthread_create(&in->threads[in->n_started], NULL, sphx_thread, in) != 0) {
            sphx_threads_stop(in);
            sphx_seterr(err, VX_ENOMEM, 0, SPHX_NAME ": cannot start the decoder threads");
            return VX_ENOMEM;
        }
    }
    return VX_OK;
oom:
    free(in->threads);
    in->threads = NULL;
    sphx_seterr(err, VX_ENOMEM, 0, SPHX_NAME ": out of memory starting the decoder threads");
    return VX_ENOMEM;
}

void sphx_threads_stop(sphx_inst *in) {
    if (!in->threads) return;
    pthread_mutex_lock(&in->rq_mu);
    in->rq_stopping = 1;
    pthread_cond_broadcast(&in->rq_cv);
    pthread_mutex_unlock(&in->rq_mu);
    for (size_t i = 0; i < in->n_started; i++) pthread_join(in->threads[i], NULL);
    pthread_cond_destroy(&in->rq_cv);
    pthread_mutex_destroy(&in->rq_mu);
    free(in->threads);
    in->threads = NULL;
    in->n_started = 0;
}

/* ---------------------------------------------------------------- calls */

/* Why feed/finish refuse, or VX_OK; mutex held. */
static int sphx_refuse(struct vx_stream *s, vx_error *err) {
    if (atomic_load(&s->canceled)) {
        sphx_seterr(err, VX_ECANCELED, 0, SPHX_NAME ": stream cancelled");
        return VX_ECANCELED;
    }
    if (s->failed) {
        sphx_seterr(err, VX_EINTERNAL, 0, SPHX_NAME ": the stream's decoder failed");
        return VX_EINTERNAL;
    }
    return VX_OK;
}

/* Copies the audio into the queue and schedules the stream when a block
 * filled.
 * Fails with VX_ECANCELED, VX_EINTERNAL (the decoder failed earlier),
 * VX_EUNAVAIL (retryable: more than a minute of audio is waiting, the
 * decoder is not keeping up) or VX_ENOMEM; the audio is then dropped. */
static int sphx_feed(vx_stream *s, const int16_t *pcm, size_t frames, vx_error *err) {
    size_t cap = s->in->chunk_samples;
    int rc, wake = 0;

    pthread_mutex_lock(&s->mu);
    if ((rc = sphx_refuse(s, err)) != VX_OK || frames == 0) goto done;
    if (s->queued + frames > s->in->queue_max) {
        sphx_seterr(err, VX_EUNAVAIL, 1, SPHX_NAME ": decoder is %zu ms behind the audio",
                    s->queued * 1000 / s->in->rate);
        rc = VX_EUNAVAIL;
        goto done;
    }
    while (frames) {
        sphx_block *b = s->tail;
        size_t k;

        if ((!b || b->eou || b->n == cap) && !(b = sphx_block_get(s))) {
            sphx_seterr(err, VX_ENOMEM, 1, SPHX_NAME ": out of memory queueing audio");
            rc = VX_ENOMEM;
            break;
        }
        k = cap - b->n < frames ? cap - b->n : frames;
        memcpy(b->pcm + b->n, pcm, k * sizeof(*pcm));
        b->n += k;
        s->queued += k;
        pcm += k;
        frames -= k;
        if (b->n == cap) wake = 1;
    }
    s->fed = 1;
    if (wake) sphx_schedule(s);
done:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

/* Marks the end of the utterance after the audio fed so far; the decoder
 * thread sends its final once it has decoded up to there. Fails with VX_ECANCELED,
 * VX_EINTERNAL (the decoder failed earlier) or VX_ENOMEM. */
static int sphx_finish(vx_stream *s, vx_error *err) {
    sphx_block *b;
    int rc;

    pthread_mutex_lock(&s->mu);
    if ((rc = sphx_refuse(s, err)) != VX_OK) goto done;
    b = s->tail;
    if ((!b || b->eou) && !(b = sphx_block_get(s))) {
        sphx_seterr(err, VX_ENOMEM, 1, SPHX_NAME ": out of memory ending an utterance");
        rc = VX_ENOMEM;
        goto done;
    }
    b->eou = 1;
    s->finishes++;
    s->fed = 0;
    sphx_schedule(s);
done:
    pthread_mutex_unlock(&s->mu);
    return rc;
}

static void sphx_cancel(vx_stream *s) {
    if (!s) return;
    atomic_store(&s->canceled, 1);
    pthread_mutex_lock(&s->mu);
    if (s->opened) sphx_schedule(s); /* else open() sees the cancel and fails */
    pthread_mutex_unlock(&s->mu);
    sphx_pool_wake(s->in); /* an open() may be waiting for a decoder */
}

/* Waits until no decoder thread holds or queues the stream (an event
 * callback in progress finishes first; a queued stream is only waited for
 * behind the slices ahead of it), leaves the decoder between utterances
 * and gives it back to the pool. */
static void sphx_close(vx_stream *s) {
    sphx_block *b;

    if (!s) return;
    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    while (s->scheduled) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    if (s->ps) {
        sphx_inst *prev = sphx_log_route(s->in);
        if (s->in_utt && ps_end_utt(s->ps) < 0) s->broken = 1;
        sphx_log_route(prev);
        sphx_pool_give(s->in, s->ps, s->broken, s->finals > 0);
    }
    sphx_drop_queue(s);
    while ((b = s->spare)) {
        s->spare = b->next;
        free(b);
    }
    free(s->partial);
    free(s->text);
    free(s->kept);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s);
}

/* What sphx_pool_take() calls before it blocks: make the stream reachable
 * for cancel() through *out, as the ABI asks of slow start calls. */
typedef struct sphx_publish {
    vx_stream **out;
    vx_stream *s;
    int done;
} sphx_publish;

static void sphx_publish_out(void *arg) {
    sphx_publish *p = arg;

    p->done = 1;
    __atomic_store_n(p->out, p->s, __ATOMIC_RELEASE);
}

/* Takes a decoder from the pool (waiting up to pool_wait, or creating one up
 * to pool_max). Fails with VX_EINVAL (missing
 * format or events), VX_ENOTSUP (not mono s16le at the samplerate key's
 * rate), VX_EUNAVAIL (retryable: no decoder free in time), VX_ECANCELED,
 * VX_EINTERNAL (a new decoder could not be made) or VX_ENOMEM. When it
 * failed after blocking, *out is set and the caller must close() it. */
static int sphx_open(void *inst, const vx_audio_format *fmt, const vx_stt_events *ev,
                     vx_stream **out, vx_error *err) {
    sphx_inst *in = inst;
    vx_stt_events e = {0};
    sphx_publish pub = {out, NULL, 0};
    struct vx_stream *s;
    int rc;

    __atomic_store_n(out, NULL, __ATOMIC_RELAXED);
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!fmt || !e.on_partial || !e.on_final || !e.on_error) {
        sphx_seterr(err, VX_EINVAL, 0, SPHX_NAME ": open needs a format and all three events");
        return VX_EINVAL;
    }
    if (fmt->sample_rate != in->rate || fmt->channels != 1 || fmt->encoding != VX_PCM_S16LE) {
        sphx_seterr(err, VX_ENOTSUP, 0,
                    SPHX_NAME ": wants mono s16le at %u Hz, got %u channel(s) at %u Hz",
                    (unsigned)in->rate, (unsigned)fmt->channels, (unsigned)fmt->sample_rate);
        return VX_ENOTSUP;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        sphx_seterr(err, VX_ENOMEM, 1, SPHX_NAME ": out of memory opening a stream");
        return VX_ENOMEM;
    }
    s->in = in;
    s->ev = e;
    atomic_init(&s->canceled, 0);
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        sphx_seterr(err, VX_ENOMEM, 1, SPHX_NAME ": cannot create a stream lock");
        return VX_ENOMEM;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        sphx_seterr(err, VX_ENOMEM, 1, SPHX_NAME ": cannot create a stream lock");
        return VX_ENOMEM;
    }
    pub.s = s;
    rc = sphx_pool_take(in, &s->canceled, sphx_publish_out, &pub, &s->ps, err);
    if (rc == VX_OK) {
        s->bestpath = cmd_ln_boolean_r(ps_get_config(s->ps), "-bestpath");
        pthread_mutex_lock(&s->mu);
        if (atomic_load(&s->canceled)) {
            sphx_seterr(err, VX_ECANCELED, 0, SPHX_NAME ": cancelled while opening");
            rc = VX_ECANCELED;
        } else {
            s->opened = 1;
        }
        pthread_mutex_unlock(&s->mu);
    }
    if (rc != VX_OK) {
        /* Published streams belong to the caller now, who closes them. */
        if (!pub.done) sphx_close(s);
        return rc;
    }
    __atomic_store_n(out, s, __ATOMIC_RELEASE);
    return VX_OK;
}

static int sphx_input_format(void *inst, vx_audio_format *out) {
    sphx_inst *in = inst;

    out->sample_rate = in->rate;
    out->channels = 1;
    out->encoding = VX_PCM_S16LE;
    return VX_OK;
}

const vx_stt_vtable sphx_stt_vtable = {
    .struct_size = sizeof(vx_stt_vtable),
    .open = sphx_open,
    .feed = sphx_feed,
    .finish = sphx_finish,
    .cancel = sphx_cancel,
    .close = sphx_close,
    .input_format = sphx_input_format,
};
