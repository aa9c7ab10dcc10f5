/*
 * Capture of one session's recording (see recorder.h).
 *
 * The recorder lives in two halves. The session half (tracks, sidecar
 * notes) is touched only on the session's strand. The writer half (file
 * descriptors, the first write error) is touched only by tasks on the
 * recorder's own strand, in order; the last of them finishes the files,
 * submits the job and frees the recorder. The two share only the backlog
 * byte count and the failed flag (atomics).
 */
#include "config.h"

#include "recording/recorder.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "base/log.h"
#include "metrics.h"
#include "recording/recording.h"
#include "pipeline/resample.h"
#include "wav.h"
#include "base/worker.h"

enum { T_USER = 0, T_BOT = 1 };
static const char *const track_file[2] = {"user.raw", "bot.raw"};

typedef struct track {
    resampler *rs;
    int rs_rate;
    uint64_t cursor;      /* end of the audio placed so far (frames) */
    int16_t *buf;         /* placed audio not yet handed to the writer */
    size_t buf_len, buf_cap;
    uint64_t buf_pos;     /* frame position of buf[0] */
    uint64_t posted_end;  /* end of what the writer was given */
    int16_t *scratch;
    size_t scratch_cap;
} track;

struct recorder {
    /* session half */
    char id[80];
    int rate;
    uint64_t start_ns;
    int64_t start_unix_ms;
    size_t flush_frames;
    long long max_backlog;
    track tr[2];
    char last_item[48];
    uint64_t last_item_pos;
    json_t *turns;
    json_t *providers;
    uint64_t dropped_frames;
    char instance[256];
    strand *w;
    /* shared */
    atomic_llong backlog;
    atomic_int failed;
    /* writer half */
    char spool[PATH_MAX];
    char live[PATH_MAX];
    int fd[2];
    int write_errno;
};

static metrics_family *f_errors;
static atomic_uint g_sample_counter;

int recorder_metrics_init(metrics_registry *reg)
{
    static const char *const l_reason[] = {"reason"};
    f_errors = metrics_counter_family(reg, "voxray_recording_capture_errors_total",
                                      "Recording capture problems (disk full, write errors, audio dropped), by reason.",
                                      1, l_reason);
    return f_errors ? 0 : -1;
}

static void count_error(const char *reason)
{
    const char *lv[] = {reason};
    metrics_series *m = f_errors ? metrics_series_get(f_errors, lv) : NULL;
    if (m) {
        metrics_counter_inc(m);
        metrics_series_release(m);
    }
}

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static uint64_t now_frames(const recorder *r)
{
    uint64_t el = mono_ns() - r->start_ns;
    return (uint64_t)((unsigned __int128)el * (unsigned)r->rate / 1000000000u);
}

long long recorder_now_ms(const recorder *r)
{
    return r ? (long long)((mono_ns() - r->start_ns) / 1000000ull) : 0;
}

long long recorder_user_end_ms(const recorder *r)
{
    return r ? (long long)(r->tr[T_USER].cursor * 1000 / (uint64_t)r->rate) : 0;
}

static void iso_time(int64_t unix_ms, char *buf, size_t len)
{
    time_t t = (time_t)(unix_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    char d[32];
    strftime(d, sizeof d, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(buf, len, "%s.%03dZ", d, (int)(unix_ms % 1000));
}

static int64_t unix_ms_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ------------------------------------------------------------ writer tasks */

typedef struct wtask {
    recorder *r;
    int kind; /* W_OPEN, W_WRITE, W_CUT, W_FINISH */
    int track;
    uint64_t pos;  /* frames: write offset, or cut length */
    int16_t *data;
    size_t n;
    json_t *side; /* W_FINISH */
    uint64_t total;
} wtask;
enum { W_OPEN, W_WRITE, W_CUT, W_FINISH };

static void writer_failed(recorder *r, const char *what, int e)
{
    if (atomic_exchange(&r->failed, 1)) return; /* logged once */
    r->write_errno = e;
    int full = e == ENOSPC || e == EDQUOT || e == EFBIG;
    count_error(full ? "disk_full" : "write_failed");
    log_error("recording capture failed; the rest of the call's audio is dropped (the session goes on)",
              "session_id", r->id, "step", what, "dir", r->live, "error", strerror(e));
}

static void w_open(recorder *r)
{
    if (fs_mkdirs(r->live, 0750) != 0) {
        writer_failed(r, "create folder", errno);
        return;
    }
    for (int t = 0; t < 2; t++) {
        char p[PATH_MAX + 16];
        snprintf(p, sizeof p, "%s/%s", r->live, track_file[t]);
        r->fd[t] = open(p, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
        if (r->fd[t] < 0) {
            writer_failed(r, "open", errno);
            return;
        }
    }
    /* What salvage needs if this process dies mid-call. */
    json_t *m = json_pack("{s:i,s:s,s:I,s:i,s:s}", "version", 1, "session_id", r->id, "started_unix_ms",
                          (json_int_t)r->start_unix_ms, "sample_rate", r->rate, "instance", r->instance);
    char *txt = m ? json_dumps(m, JSON_COMPACT) : NULL;
    json_decref(m);
    if (txt == NULL || fs_write_atomic(r->live, "meta.json", txt, strlen(txt)) != 0)
        writer_failed(r, "write meta.json", txt ? errno : ENOMEM);
    free(txt);
}

static void w_write(recorder *r, wtask *t)
{
    if (!atomic_load(&r->failed) && r->fd[t->track] >= 0 &&
        fs_pwrite_all(r->fd[t->track], t->data, t->n * 2, (off_t)(t->pos * 2)) != 0)
        writer_failed(r, "write", errno);
}

static void w_cut(recorder *r, wtask *t)
{
    int fd = r->fd[t->track];
    struct stat st;
    if (fd < 0 || fstat(fd, &st) != 0) return;
    if ((uint64_t)st.st_size > t->pos * 2 && ftruncate(fd, (off_t)(t->pos * 2)) != 0)
        writer_failed(r, "truncate", errno);
}

/* Interleave the two raw tracks (missing or short files read as silence)
 * into spool/<id>.wav, atomically. Returns 0 or -1 (errno). */
static int write_wav(const char *spool, const char *id, int ufd, int bfd, uint64_t frames, int rate)
{
    char tmp[PATH_MAX], dst[PATH_MAX];
    if (snprintf(tmp, sizeof tmp, "%s/.%s.wav.XXXXXX.tmp", spool, id) >= (int)sizeof tmp ||
        snprintf(dst, sizeof dst, "%s/%s.wav", spool, id) >= (int)sizeof dst) {
        errno = ENAMETOOLONG;
        return -1;
    }
    uint64_t data = frames * 4;
    if (data > 0xFFFFFFFFull - 36) {
        errno = EFBIG;
        return -1;
    }
    int fd = mkstemps(tmp, 4);
    if (fd < 0) return -1;
    unsigned char h[44];
    wav_header(h, rate, 2, data);
    enum { CH = 4096 };
    int16_t u[CH], b[CH], out[CH * 2];
    if (fs_pwrite_all(fd, h, sizeof h, 0) != 0) goto fail;
    for (uint64_t f = 0; f < frames; f += CH) {
        size_t n = frames - f < CH ? (size_t)(frames - f) : CH;
        for (int t = 0; t < 2; t++) {
            int src = t == 0 ? ufd : bfd;
            int16_t *dstb = t == 0 ? u : b;
            memset(dstb, 0, n * 2);
            if (src < 0) continue;
            size_t got = 0;
            while (got < n * 2) {
                ssize_t rd = pread(src, (char *)dstb + got, n * 2 - got, (off_t)(f * 2 + got));
                if (rd < 0 && errno == EINTR) continue;
                if (rd < 0) goto fail;
                if (rd == 0) break;
                got += (size_t)rd;
            }
        }
        for (size_t i = 0; i < n; i++) {
            out[2 * i] = u[i];
            out[2 * i + 1] = b[i];
        }
        if (fs_pwrite_all(fd, out, n * 4, (off_t)(44 + f * 4)) != 0) goto fail;
    }
    return fs_commit(fd, tmp, dst, spool);
fail:;
    int e = errno;
    if (fd >= 0) close(fd);
    unlink(tmp);
    errno = e;
    return -1;
}

/* Remove the live folder of a finished capture. */
static void remove_live(const char *live)
{
    static const char *const files[] = {"user.raw", "bot.raw", "meta.json", "sidecar.json"};
    char p[PATH_MAX + 32];
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(p, sizeof p, "%s/%s", live, files[i]);
        unlink(p);
    }
    fs_remove_temporaries(live);
    rmdir(live);
}

/* Sidecar into live/sidecar.json, WAV into the spool, then the sidecar
 * renamed into the spool: a crash in between leaves the live folder, which
 * salvage finishes. */
static int finish_files(const char *spool, const char *live, const char *id, int ufd, int bfd, uint64_t frames,
                        int rate, json_t *side)
{
    char *txt = json_dumps(side, JSON_INDENT(2) | JSON_SORT_KEYS);
    char src[PATH_MAX + 32], dst[PATH_MAX];
    int rc = -1;
    if (txt == NULL) {
        errno = ENOMEM;
        return -1;
    }
    if (fs_write_atomic(live, "sidecar.json", txt, strlen(txt)) != 0) goto out;
    if (write_wav(spool, id, ufd, bfd, frames, rate) != 0) goto out;
    snprintf(src, sizeof src, "%s/sidecar.json", live);
    snprintf(dst, sizeof dst, "%s/%s.json", spool, id);
    if (rename(src, dst) != 0 || fs_sync_dir(spool) != 0) {
        int e = errno;
        snprintf(dst, sizeof dst, "%s/%s.wav", spool, id);
        unlink(dst); /* no WAV without its sidecar: salvage redoes both */
        errno = e;
        goto out;
    }
    rc = 0;
out:
    free(txt);
    return rc;
}

static void w_finish(recorder *r, wtask *t)
{
    json_t *side = t->side;
    json_t *audio = json_object_get(side, "audio");
    uint64_t frames = t->total;
    json_object_set_new(audio, "bytes", json_integer((json_int_t)(44 + frames * 4)));
    json_object_set_new(audio, "duration_s", json_real((double)frames / r->rate));
    json_object_set_new(audio, "dropped_ms", json_integer((json_int_t)(r->dropped_frames * 1000 / (uint64_t)r->rate)));
    int failed = atomic_load(&r->failed);
    json_object_set_new(side, "complete", json_boolean(!failed && r->dropped_frames == 0));
    if (failed)
        json_object_set_new(side, "capture_error", json_string(r->write_errno ? strerror(r->write_errno) : "failed"));
    int ok = 0;
    if (r->fd[0] >= 0 || r->fd[1] >= 0) {
        ok = finish_files(r->spool, r->live, r->id, r->fd[0], r->fd[1], frames, r->rate, side) == 0;
        if (!ok) {
            int e = errno;
            count_error("finalize_failed");
            log_error("recording could not be finished; its raw audio is kept and salvaged at the next start",
                      "session_id", r->id, "dir", r->live, "error", strerror(e));
        }
    }
    for (int k = 0; k < 2; k++)
        if (r->fd[k] >= 0) close(r->fd[k]);
    if (ok) {
        remove_live(r->live);
        recording_submit(r->id);
    }
    json_decref(side);
}

static void recorder_free(recorder *r)
{
    for (int t = 0; t < 2; t++) {
        resampler_free(r->tr[t].rs);
        free(r->tr[t].buf);
        free(r->tr[t].scratch);
    }
    json_decref(r->turns);
    json_decref(r->providers);
    strand_unref(r->w);
    free(r);
}

static void run_wtask(void *arg)
{
    wtask *t = arg;
    recorder *r = t->r;
    switch (t->kind) {
    case W_OPEN: w_open(r); break;
    case W_WRITE: w_write(r, t); break;
    case W_CUT: w_cut(r, t); break;
    case W_FINISH: w_finish(r, t); break;
    }
    if (t->kind == W_WRITE) atomic_fetch_sub(&r->backlog, (long long)(t->n * 2));
    free(t->data);
    int last = t->kind == W_FINISH;
    free(t);
    if (last) {
        recorder_free(r);
        recording_live(-1);
    }
}

static int post(recorder *r, wtask *t)
{
    t->r = r;
    if (strand_post(r->w, run_wtask, t) != 0) {
        free(t->data);
        json_decref(t->side);
        free(t);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ session half */

recorder *recorder_open(const settings *s, const char *id, uint64_t start_ns, int64_t start_unix_ms)
{
    if (!recording_enabled()) return NULL;
    unsigned k = atomic_fetch_add(&g_sample_counter, 1);
    int every = settings_live_rec_sample_rate();
    if (every > 1 && k % (unsigned)every != 0) return NULL;
    recorder *r = calloc(1, sizeof *r);
    if (r == NULL) return NULL;
    snprintf(r->id, sizeof r->id, "%s", id);
    r->rate = s->rec_audio_rate;
    r->start_ns = start_ns;
    r->start_unix_ms = start_unix_ms;
    r->flush_frames = (size_t)r->rate / 2;
    r->max_backlog = s->rec_max_backlog;
    r->fd[0] = r->fd[1] = -1;
    if (*s->rec_instance) snprintf(r->instance, sizeof r->instance, "%s", s->rec_instance);
    else if (gethostname(r->instance, sizeof r->instance - 1) != 0) snprintf(r->instance, sizeof r->instance, "voxray");
    snprintf(r->spool, sizeof r->spool, "%s", s->rec_spool_dir);
    if (snprintf(r->live, sizeof r->live, "%s/live/%s", s->rec_spool_dir, id) >= (int)sizeof r->live) {
        free(r);
        return NULL;
    }
    r->turns = json_array();
    r->providers = json_pack("{s:[],s:[],s:[]}", "stt", "llm", "tts");
    r->w = strand_new();
    wtask *t = calloc(1, sizeof *t);
    if (r->turns == NULL || r->providers == NULL || r->w == NULL || t == NULL) {
        free(t);
        recorder_free(r);
        return NULL;
    }
    t->kind = W_OPEN;
    if (post(r, t) != 0) {
        recorder_free(r);
        return NULL;
    }
    recording_live(1);
    return r;
}

/* Hand the track's buffer to the writer (or drop it when the writer is
 * failing or too far behind). */
static void flush_track(recorder *r, int ti)
{
    track *tr = &r->tr[ti];
    if (tr->buf_len == 0) return;
    long long bytes = (long long)tr->buf_len * 2;
    int failed = atomic_load(&r->failed);
    if (failed || atomic_load(&r->backlog) + bytes > r->max_backlog) {
        if (!failed) {
            if (r->dropped_frames == 0)
                log_warn("recording falls behind the disk; audio is dropped", "session_id", r->id);
            count_error("backlog_full");
        }
        r->dropped_frames += tr->buf_len;
        tr->buf_len = 0;
        return;
    }
    wtask *t = calloc(1, sizeof *t);
    int16_t *copy = malloc((size_t)bytes);
    if (t == NULL || copy == NULL) {
        free(t);
        free(copy);
        r->dropped_frames += tr->buf_len;
        tr->buf_len = 0;
        return;
    }
    memcpy(copy, tr->buf, (size_t)bytes);
    t->kind = W_WRITE;
    t->track = ti;
    t->pos = tr->buf_pos;
    t->data = copy;
    t->n = tr->buf_len;
    atomic_fetch_add(&r->backlog, bytes);
    if (post(r, t) != 0) {
        atomic_fetch_sub(&r->backlog, bytes);
        r->dropped_frames += tr->buf_len;
    } else if (tr->buf_pos + tr->buf_len > tr->posted_end) {
        tr->posted_end = tr->buf_pos + tr->buf_len;
    }
    tr->buf_len = 0;
}

/* Place n frames at `pos` of a track. */
static void place(recorder *r, int ti, uint64_t pos, const int16_t *pcm, size_t n)
{
    track *tr = &r->tr[ti];
    if (tr->buf_len && pos != tr->buf_pos + tr->buf_len) flush_track(r, ti);
    if (tr->buf_len == 0) tr->buf_pos = pos;
    if (tr->buf_len + n > tr->buf_cap) {
        size_t cap = tr->buf_cap ? tr->buf_cap : r->flush_frames * 2;
        while (cap < tr->buf_len + n) cap *= 2;
        int16_t *nb = realloc(tr->buf, cap * sizeof *nb);
        if (nb == NULL) {
            r->dropped_frames += n;
            tr->cursor = pos + n;
            return;
        }
        tr->buf = nb;
        tr->buf_cap = cap;
    }
    memcpy(tr->buf + tr->buf_len, pcm, n * sizeof *pcm);
    tr->buf_len += n;
    tr->cursor = pos + n;
    if (tr->buf_len >= r->flush_frames) flush_track(r, ti);
}

/* Convert to the recording rate; returns the frames in tr->scratch. */
static size_t convert(recorder *r, track *tr, const int16_t *pcm, size_t n, int rate)
{
    if (tr->rs == NULL || tr->rs_rate != rate) {
        resampler_free(tr->rs);
        tr->rs = resampler_new(rate, r->rate, 3);
        tr->rs_rate = rate;
        if (tr->rs == NULL) return 0;
    }
    size_t cap = resampler_out_capacity(tr->rs, n);
    if (cap > tr->scratch_cap) {
        int16_t *nb = realloc(tr->scratch, cap * sizeof *nb);
        if (nb == NULL) return 0;
        tr->scratch = nb;
        tr->scratch_cap = cap;
    }
    return resampler_process(tr->rs, pcm, n, tr->scratch, cap);
}

void recorder_user_audio(recorder *r, const int16_t *pcm, size_t n, int rate)
{
    if (r == NULL || n == 0 || rate <= 0) return;
    track *tr = &r->tr[T_USER];
    size_t m = convert(r, tr, pcm, n, rate);
    if (m == 0) return;
    uint64_t now = now_frames(r);
    uint64_t pos = now > m ? now - m : 0;
    if (pos < tr->cursor) pos = tr->cursor;
    place(r, T_USER, pos, tr->scratch, m);
}

void recorder_bot_audio(recorder *r, const int16_t *pcm, size_t n, int rate, const char *item_id)
{
    if (r == NULL || n == 0 || rate <= 0) return;
    track *tr = &r->tr[T_BOT];
    size_t m = convert(r, tr, pcm, n, rate);
    if (m == 0) return;
    uint64_t pos = now_frames(r);
    if (pos < tr->cursor) pos = tr->cursor;
    if (item_id && strcmp(item_id, r->last_item) != 0) {
        snprintf(r->last_item, sizeof r->last_item, "%s", item_id);
        r->last_item_pos = pos;
    }
    place(r, T_BOT, pos, tr->scratch, m);
}

/* Remove bot audio from position p on. */
static void cut_bot(recorder *r, uint64_t p)
{
    track *tr = &r->tr[T_BOT];
    if (p >= tr->cursor) return;
    if (tr->buf_len) {
        if (p <= tr->buf_pos) tr->buf_len = 0;
        else if (p < tr->buf_pos + tr->buf_len) tr->buf_len = (size_t)(p - tr->buf_pos);
    }
    if (p < tr->posted_end) {
        wtask *t = calloc(1, sizeof *t);
        if (t) {
            t->kind = W_CUT;
            t->track = T_BOT;
            t->pos = p;
            post(r, t);
        }
        tr->posted_end = p;
    }
    tr->cursor = p;
    if (tr->rs) resampler_reset(tr->rs);
}

void recorder_bot_stop(recorder *r)
{
    if (r == NULL) return;
    cut_bot(r, now_frames(r));
}

void recorder_bot_truncate(recorder *r, const char *item_id, int audio_end_ms)
{
    if (r == NULL || item_id == NULL || strcmp(item_id, r->last_item) != 0 || audio_end_ms < 0) return;
    cut_bot(r, r->last_item_pos + (uint64_t)audio_end_ms * (uint64_t)r->rate / 1000);
}

static json_t *turn_of(recorder *r, const char *item_id, const char *role)
{
    size_t i;
    json_t *t;
    json_array_foreach(r->turns, i, t) {
        const char *id = json_string_value(json_object_get(t, "item_id"));
        if (id && strcmp(id, item_id) == 0) return t;
    }
    t = json_pack("{s:s,s:s}", "item_id", item_id, "role", role ? role : "user");
    if (t && json_array_append_new(r->turns, t) != 0) return NULL;
    return t;
}

void recorder_note(recorder *r, const char *item_id, const char *role, const char *key, const char *text)
{
    if (r == NULL || item_id == NULL || key == NULL) return;
    json_t *t = turn_of(r, item_id, role);
    if (t) json_object_set_new(t, key, json_string(text ? text : ""));
}

void recorder_note_ms(recorder *r, const char *item_id, const char *role, const char *key, long long ms)
{
    if (r == NULL || item_id == NULL || key == NULL) return;
    json_t *t = turn_of(r, item_id, role);
    if (t) json_object_set_new(t, key, json_integer(ms < 0 ? recorder_now_ms(r) : ms));
}

void recorder_provider(recorder *r, const char *stage, const char *instance)
{
    if (r == NULL || stage == NULL || instance == NULL) return;
    json_t *a = json_object_get(r->providers, stage);
    if (a == NULL) return;
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) if (strcmp(json_string_value(v), instance) == 0) return;
    json_array_append_new(a, json_string(instance));
}

void recorder_close(recorder *r, const char *end_reason)
{
    if (r == NULL) return;
    flush_track(r, T_USER);
    flush_track(r, T_BOT);
    uint64_t total = now_frames(r);
    for (int t = 0; t < 2; t++)
        if (r->tr[t].cursor > total) total = r->tr[t].cursor;
    int64_t end_ms = unix_ms_now();
    char started[40], ended[40];
    iso_time(r->start_unix_ms, started, sizeof started);
    iso_time(end_ms, ended, sizeof ended);
    char wav[128];
    snprintf(wav, sizeof wav, "%s.wav", r->id);
    json_t *side = json_pack("{s:i,s:s,s:s,s:s,s:I,s:s,s:I,s:f,s:s,s:{s:s,s:s,s:i,s:i,s:[s,s]},s:O,s:O}",
                             "version", 1, "session_id", r->id, "instance", r->instance, "started_at", started,
                             "started_unix_ms", (json_int_t)r->start_unix_ms, "ended_at", ended, "ended_unix_ms",
                             (json_int_t)end_ms, "duration_s", (double)(mono_ns() - r->start_ns) / 1e9, "end_reason",
                             end_reason ? end_reason : "closed", "audio", "file", wav, "encoding", "pcm_s16le",
                             "sample_rate", r->rate, "channels", 2, "channel_map", "user", "bot", "providers",
                             r->providers, "turns", r->turns);
    wtask *t = calloc(1, sizeof *t);
    if (side == NULL || t == NULL) {
        /* Out of memory: still finish the audio with a bare sidecar. */
        json_decref(side);
        side = json_pack("{s:s,s:I,s:{}}", "session_id", r->id, "started_unix_ms", (json_int_t)r->start_unix_ms,
                         "audio");
    }
    if (t == NULL || side == NULL) {
        free(t);
        json_decref(side);
        log_error("out of memory finishing a recording; its raw audio is salvaged at the next start", "session_id",
                  r->id);
        return; /* leaks the recorder on purpose: its writer tasks may still run */
    }
    t->kind = W_FINISH;
    t->side = side;
    t->total = total;
    if (post(r, t) != 0) {
        /* The worker pool is gone: nothing can run the writer any more. */
        log_error("recording not finished (shutting down); its raw audio is salvaged at the next start",
                  "session_id", r->id);
        recording_live(-1);
    }
}

/* ------------------------------------------------------------ salvage */

int recorder_salvage(const settings *s, const char *id)
{
    char live[PATH_MAX], p[PATH_MAX + 32];
    if (snprintf(live, sizeof live, "%s/live/%s", s->rec_spool_dir, id) >= (int)sizeof live) return -1;
    int fd[2] = {-1, -1};
    uint64_t frames = 0;
    for (int t = 0; t < 2; t++) {
        snprintf(p, sizeof p, "%s/%s", live, track_file[t]);
        fd[t] = open(p, O_RDONLY | O_CLOEXEC);
        struct stat st;
        if (fd[t] >= 0 && fstat(fd[t], &st) == 0 && (uint64_t)st.st_size / 2 > frames)
            frames = (uint64_t)st.st_size / 2;
    }
    int rate = s->rec_audio_rate;
    json_int_t started = 0;
    snprintf(p, sizeof p, "%s/meta.json", live);
    json_t *meta = json_load_file(p, 0, NULL);
    if (meta) {
        json_t *v;
        if ((v = json_object_get(meta, "sample_rate")) && json_is_integer(v) && json_integer_value(v) >= 8000 &&
            json_integer_value(v) <= 48000)
            rate = (int)json_integer_value(v);
        if ((v = json_object_get(meta, "started_unix_ms")) && json_is_integer(v)) started = json_integer_value(v);
    }
    if (started == 0) {
        struct stat st;
        started = stat(live, &st) == 0 ? (json_int_t)st.st_mtime * 1000 : (json_int_t)unix_ms_now();
    }
    /* A sidecar finished before the crash keeps its turns. */
    snprintf(p, sizeof p, "%s/sidecar.json", live);
    json_t *side = json_load_file(p, 0, NULL);
    if (side == NULL) {
        char wav[128], st_iso[40];
        snprintf(wav, sizeof wav, "%s.wav", id);
        iso_time(started, st_iso, sizeof st_iso);
        side = json_pack("{s:i,s:s,s:s,s:I,s:s,s:{s:s,s:s,s:i,s:i,s:[s,s]},s:[]}", "version", 1, "session_id", id,
                         "started_at", st_iso, "started_unix_ms", started, "end_reason", "interrupted", "audio",
                         "file", wav, "encoding", "pcm_s16le", "sample_rate", rate, "channels", 2, "channel_map",
                         "user", "bot", "turns");
        if (side && meta) json_object_set(side, "instance", json_object_get(meta, "instance"));
    }
    json_decref(meta);
    int rc = -1;
    if (side) {
        json_t *audio = json_object_get(side, "audio");
        if (!json_is_object(audio)) {
            audio = json_object();
            json_object_set_new(side, "audio", audio);
        }
        json_object_set_new(audio, "bytes", json_integer((json_int_t)(44 + frames * 4)));
        json_object_set_new(audio, "duration_s", json_real((double)frames / rate));
        if (json_object_get(side, "duration_s") == NULL)
            json_object_set_new(side, "duration_s", json_real((double)frames / rate));
        json_object_set_new(side, "complete", json_false());
        json_object_set_new(side, "recovered", json_true());
        rc = finish_files(s->rec_spool_dir, live, id, fd[0], fd[1], frames, rate, side);
        json_decref(side);
    }
    for (int t = 0; t < 2; t++)
        if (fd[t] >= 0) close(fd[t]);
    if (rc == 0) remove_live(live);
    else log_error("an interrupted recording could not be salvaged; its raw files are kept", "dir", live,
                   "error", strerror(errno));
    return rc;
}
