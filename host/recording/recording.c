/*
 * The recording upload queue, its workers and the dead-letter folder (see
 * recording.h).
 *
 * One mutex guards the queue; workers sleep on a condition variable until a
 * job is due (a job backing off carries its due time), the next dead-letter
 * replay is due, or shutdown. A job taken by a worker leaves the queue
 * (`inflight`) until its attempt ends.
 */
#include "config.h"

#include "recording/recording.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <limits.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "base/fsutil.h"
#include "plugin/gate.h"
#include "plugin/services.h"
#include "base/log.h"
#include "metrics.h"
#include "session/persist.h"
#include "recording/recorder.h"

#define ID_MAX 80

typedef struct rjob {
    char id[ID_MAX];
    int dead;         /* its files are in the dead-letter folder */
    int attempts;     /* upload attempts made */
    int wav_done, json_done;
    unsigned long done_gen; /* the sink generation wav_done/json_done refer to */
    int abandoned;    /* shutdown gave up waiting for its upload (2: its worker let go) */
    int finishing;    /* its upload returned; its worker handles the files */
    int busy;         /* another process holds its lock */
    uint64_t due_ns;  /* not before (backoff) */
    struct rjob *next;
} rjob;

static struct {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int on;
    int stopping;     /* no new uploads start; waiting jobs are dead-lettered */
    uint64_t drain_deadline_ns; /* 0: none */
    rjob *head;       /* waiting jobs, in submission order */
    int depth;
    rjob **inflight;  /* one slot per worker */
    pthread_t *threads;
    int n_threads;
    uint64_t next_replay_ns;
    atomic_int live;
    atomic_int dead_count;
    app *a;
} Q = {.mu = PTHREAD_MUTEX_INITIALIZER};

static metrics_family *f_enq, *f_ok, *f_failed, *f_depth, *f_dead, *f_dead_jobs, *f_retries;
static metrics_series *s_enq, *s_ok, *s_failed, *s_depth, *s_dead_jobs, *s_retries;

static uint64_t mono_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int recording_metrics_init(metrics_registry *reg)
{
    static const char *const l_reason[] = {"reason"};
    f_enq = metrics_counter_family(reg, "recording_jobs_enqueued_total",
                                   "Recording upload jobs placed into the worker queue.", 0, NULL);
    f_ok = metrics_counter_family(reg, "recording_jobs_success_total",
                                  "Recording upload jobs that completed successfully.", 0, NULL);
    f_failed = metrics_counter_family(reg, "recording_jobs_failed_total",
                                      "Recording upload jobs that exhausted their retries (or failed for good) and were dead-lettered.",
                                      0, NULL);
    f_depth = metrics_gauge_family(reg, "recording_queue_depth",
                                   "Recording upload jobs waiting in the queue (backoffs included).", 0, NULL);
    f_dead = metrics_counter_family(reg, "voxray_recording_dead_letter_total",
                                    "Recording jobs moved to the dead-letter folder, by reason.", 1, l_reason);
    f_dead_jobs = metrics_gauge_family(reg, "voxray_recording_dead_letter_jobs",
                                       "Recording jobs in the dead-letter folder right now.", 0, NULL);
    f_retries = metrics_counter_family(reg, "voxray_recording_upload_retries_total",
                                       "Recording upload attempts repeated after a retryable failure.", 0, NULL);
    if (!f_enq || !f_ok || !f_failed || !f_depth || !f_dead || !f_dead_jobs || !f_retries) return -1;
    s_enq = metrics_series_get(f_enq, NULL);
    s_ok = metrics_series_get(f_ok, NULL);
    s_failed = metrics_series_get(f_failed, NULL);
    s_depth = metrics_series_get(f_depth, NULL);
    s_dead_jobs = metrics_series_get(f_dead_jobs, NULL);
    s_retries = metrics_series_get(f_retries, NULL);
    return s_enq && s_ok && s_failed && s_depth && s_dead_jobs && s_retries ? 0 : -1;
}

static void count_dead(const char *reason)
{
    const char *lv[] = {reason};
    metrics_series *m = metrics_series_get(f_dead, lv);
    if (m) {
        metrics_counter_inc(m);
        metrics_series_release(m);
    }
}

static void set_dead_jobs(int n)
{
    atomic_store(&Q.dead_count, n);
    metrics_gauge_set(s_dead_jobs, n);
}

int recording_enabled(void) { return Q.on; }
const char *recording_spool_dir(void) { return Q.a ? Q.a->s.rec_spool_dir : NULL; }
void recording_live(int delta) { atomic_fetch_add(&Q.live, delta); }

void recording_counts(int *depth, int *dead_letters)
{
    pthread_mutex_lock(&Q.mu);
    *depth = Q.depth;
    pthread_mutex_unlock(&Q.mu);
    *dead_letters = atomic_load(&Q.dead_count);
}

/* ------------------------------------------------------------ job files */

static const char *job_dir(const settings *s, const rjob *j)
{
    return j->dead ? s->rec_dead_letter_dir : s->rec_spool_dir;
}

static int file_path(char *buf, size_t len, const char *dir, const char *id, const char *ext)
{
    return snprintf(buf, len, "%s/%s%s", dir, id, ext) < (int)len ? 0 : -1;
}

static int file_exists(const char *p)
{
    struct stat st;
    return stat(p, &st) == 0 && S_ISREG(st.st_mode);
}

/* What the sidecar says about the call (defaults when it is unreadable). */
typedef struct side_info {
    int64_t started_ms;
    double duration_s;
    char instance[128];
    char session_id[ID_MAX];
    int complete;
} side_info;

static void read_sidecar(const char *path, const char *wav, side_info *si)
{
    memset(si, 0, sizeof *si);
    si->complete = 1;
    json_t *j = json_load_file(path, 0, NULL);
    if (j) {
        json_t *v;
        if ((v = json_object_get(j, "started_unix_ms")) && json_is_integer(v)) si->started_ms = json_integer_value(v);
        if ((v = json_object_get(j, "duration_s")) && json_is_number(v)) si->duration_s = json_number_value(v);
        if ((v = json_object_get(j, "instance")) && json_is_string(v))
            snprintf(si->instance, sizeof si->instance, "%s", json_string_value(v));
        if ((v = json_object_get(j, "complete")) && json_is_boolean(v)) si->complete = json_is_true(v);
        if ((v = json_object_get(j, "session_id")) && json_is_string(v))
            snprintf(si->session_id, sizeof si->session_id, "%s", json_string_value(v));
        json_decref(j);
    }
    if (si->started_ms == 0) {
        struct stat st;
        if (stat(wav, &st) == 0) si->started_ms = (int64_t)st.st_mtime * 1000;
    }
}

/* "YYYY/MM/DD/<id><ext>" from the UTC start of the call. */
static void object_name(char *buf, size_t len, int64_t started_ms, const char *id, const char *ext)
{
    time_t t = (time_t)(started_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(buf, len, "%04d/%02d/%02d/%s%s", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, id, ext);
}

/* Upload what is not uploaded yet: the WAV, then the sidecar (a sidecar in
 * the destination vouches for its WAV). */
static int upload_job(plug_instance *sink, const settings *s, rjob *j, vx_error *err)
{
    char wav[PATH_MAX], js[PATH_MAX], name[160];
    const char *dir = job_dir(s, j);
    if (file_path(wav, sizeof wav, dir, j->id, ".wav") != 0 || file_path(js, sizeof js, dir, j->id, ".json") != 0) {
        memset(err, 0, sizeof *err);
        err->code = VX_EINVAL;
        snprintf(err->msg, sizeof err->msg, "path too long");
        return VX_EINVAL;
    }
    side_info si;
    read_sidecar(js, wav, &si);
    if (!file_exists(js)) j->json_done = 1; /* salvaged without one: the WAV alone */
    const char *status = si.complete ? "complete" : "incomplete";
    vx_kv meta[] = {{"instance", si.instance}, {"recording", status}};
    for (int k = 0; k < 2; k++) {
        int is_wav = k == 0;
        if (is_wav ? j->wav_done : j->json_done) continue;
        const char *path = is_wav ? wav : js;
        struct stat st;
        if (stat(path, &st) != 0) {
            memset(err, 0, sizeof *err);
            err->code = VX_EINVAL;
            snprintf(err->msg, sizeof err->msg, "%.180s: %.60s", path, strerror(errno));
            return VX_EINVAL;
        }
        object_name(name, sizeof name, si.started_ms, j->id, is_wav ? ".wav" : ".json");
        vx_recording rec = {
            .struct_size = sizeof rec,
            .path = path,
            .session_id = si.session_id[0] ? si.session_id : j->id,
            .content_type = is_wav ? "audio/wav" : "application/json",
            .bytes = (uint64_t)st.st_size,
            .duration_s = si.duration_s,
            .started_unix_ms = si.started_ms,
            .meta = meta,
            .n_meta = 2,
            .name = name,
        };
        int rc = gate_sink_upload(sink, &rec, err);
        if (rc != 0) return rc;
        if (is_wav) j->wav_done = 1;
        else j->json_done = 1;
    }
    return 0;
}

static void remove_job_files(const char *dir, const char *id)
{
    static const char *const ext[] = {".json", ".error", ".wav"};
    char p[PATH_MAX];
    for (size_t i = 0; i < sizeof ext / sizeof ext[0]; i++)
        if (file_path(p, sizeof p, dir, id, ext[i]) == 0) unlink(p);
    fs_sync_dir(dir);
}

/* Move a spool job into the dead-letter folder (sidecar first, WAV last: the
 * WAV marks a complete dead letter) and write <id>.error. For a job already
 * there, only .error is updated. */
static int dead_letter(const settings *s, rjob *j, const char *reason, const char *detail)
{
    char p[PATH_MAX], txt[1024];
    int rc = 0;
    if (!j->dead) {
        if (file_path(p, sizeof p, s->rec_spool_dir, j->id, ".json") == 0 && file_exists(p) &&
            fs_move(p, s->rec_dead_letter_dir) != 0)
            rc = -1;
        if (rc == 0 && file_path(p, sizeof p, s->rec_spool_dir, j->id, ".wav") == 0 &&
            fs_move(p, s->rec_dead_letter_dir) != 0)
            rc = -1;
        if (rc != 0) {
            log_error("recording could not be moved to the dead-letter folder; it stays in the spool",
                      "session_id", j->id, "dir", s->rec_dead_letter_dir, "error", strerror(errno));
            return -1;
        }
        j->dead = 1;
        atomic_fetch_add(&Q.dead_count, 1);
        metrics_gauge_set(s_dead_jobs, atomic_load(&Q.dead_count));
    }
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    int n = snprintf(txt, sizeof txt, "time: %s\nreason: %s\nattempts: %d\nerror: %s\n", when, reason, j->attempts,
                     detail ? detail : "");
    char name[ID_MAX + 8];
    snprintf(name, sizeof name, "%s.error", j->id);
    if (fs_write_atomic(s->rec_dead_letter_dir, name, txt, (size_t)(n < (int)sizeof txt ? n : (int)sizeof txt - 1)) != 0)
        log_warn("could not write the dead letter's .error file", "session_id", j->id, "error", strerror(errno));
    count_dead(reason);
    char att[16];
    snprintf(att, sizeof att, "%d", j->attempts);
    log_error("recording dead-lettered", "session_id", j->id, "reason", reason, "attempts", att, "error",
              detail ? detail : "", "dir", s->rec_dead_letter_dir);
    return 0;
}

/* ------------------------------------------------------------ queue */

/* Caller holds Q.mu. */
static int queued_or_inflight(const char *id)
{
    for (rjob *j = Q.head; j; j = j->next)
        if (strcmp(j->id, id) == 0) return 1;
    for (int i = 0; i < Q.n_threads; i++)
        if (Q.inflight[i] && strcmp(Q.inflight[i]->id, id) == 0) return 1;
    return 0;
}

/* Caller holds Q.mu. */
static void push(rjob *j)
{
    rjob **pp = &Q.head;
    while (*pp) pp = &(*pp)->next;
    j->next = NULL;
    *pp = j;
    Q.depth++;
    metrics_gauge_set(s_depth, Q.depth);
    pthread_cond_broadcast(&Q.cv);
}

void recording_submit(const char *id)
{
    rjob *j = calloc(1, sizeof *j);
    if (j == NULL) {
        log_error("out of memory queueing a recording; it stays in the spool until the next start", "session_id", id);
        return;
    }
    snprintf(j->id, sizeof j->id, "%s", id);
    pthread_mutex_lock(&Q.mu);
    int full = Q.depth >= Q.a->s.rec_queue_size;
    if (!Q.stopping && !full && Q.n_threads > 0) {
        push(j);
        metrics_counter_inc(s_enq);
        pthread_mutex_unlock(&Q.mu);
        return;
    }
    pthread_mutex_unlock(&Q.mu);
    dead_letter(&Q.a->s, j, full ? "queue_full" : "shutdown",
                full ? "the upload queue was full ([recording] queue_size)" : "submitted while shutting down");
    free(j);
}

/* The complete jobs in a folder: the ids of its <id>.wav files (a WAV is
 * written last, so it marks a complete job; hidden names are temporaries).
 * Returns how many (*ids malloc'd, each id too; free both), or -1 with
 * errno when the folder cannot be read. */
static int list_jobs(const char *dir, char ***ids)
{
    DIR *d = opendir(dir);
    int n = 0;
    *ids = NULL;
    if (d == NULL) return -1;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t l = strlen(e->d_name);
        if (l < 5 || l - 4 >= ID_MAX || strcmp(e->d_name + l - 4, ".wav") != 0 || e->d_name[0] == '.') continue;
        char id[ID_MAX];
        snprintf(id, sizeof id, "%.*s", (int)(l - 4), e->d_name);
        if (!persist_valid_id(id)) continue;
        char **ni = realloc(*ids, (size_t)(n + 1) * sizeof *ni);
        if (ni == NULL) break;
        *ids = ni;
        if ((ni[n] = strdup(id)) != NULL) n++;
    }
    closedir(d);
    return n;
}

static void free_ids(char **ids, int n)
{
    for (int i = 0; i < n; i++) free(ids[i]);
    free(ids);
}

/* Queue dead letters (oldest first by name order of the scan is fine) while
 * there is room. Also recounts the folder. Caller does not hold Q.mu. */
static void replay_scan(void)
{
    const settings *s = &Q.a->s;
    char **ids;
    int total = list_jobs(s->rec_dead_letter_dir, &ids), queued = 0;
    if (total < 0) return;
    for (int i = 0; i < total; i++) {
        const char *id = ids[i];
        pthread_mutex_lock(&Q.mu);
        if (!Q.stopping && Q.depth < s->rec_queue_size && !queued_or_inflight(id)) {
            rjob *j = calloc(1, sizeof *j);
            if (j) {
                snprintf(j->id, sizeof j->id, "%s", id);
                j->dead = 1;
                push(j);
                metrics_counter_inc(s_enq);
                queued++;
            }
        }
        pthread_mutex_unlock(&Q.mu);
    }
    free_ids(ids, total);
    set_dead_jobs(total);
    if (queued) {
        char n[16], t[16];
        snprintf(n, sizeof n, "%d", queued);
        snprintf(t, sizeof t, "%d", total);
        log_info("dead-lettered recordings re-submitted", "jobs", n, "in_folder", t);
    }
}

/* Backoff before retry number `attempt` (1-based): base * 2^(attempt-1),
 * capped, with jitter in [d/2, d]. */
static uint64_t backoff_ns(const settings *s, int attempt)
{
    (void)s;
    double d = (double)settings_live_rec_backoff_ms(), max = (double)settings_live_rec_backoff_max_ms();
    for (int i = 1; i < attempt && d < max; i++) d *= 2;
    if (d > max) d = max;
    double jitter = 0.5 + 0.5 * ((double)(rand() % 10001) / 10000.0);
    return (uint64_t)(d * jitter * 1e6);
}

/* Lock a job's WAV against another process (--replay-recordings) working
 * on it. Returns the fd, -1 if the job is gone, -2 if it is locked. */
static int lock_job(const settings *s, const rjob *j)
{
    char p[PATH_MAX];
    if (file_path(p, sizeof p, job_dir(s, j), j->id, ".wav") != 0) return -1;
    int fd = open(p, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return -1;
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        close(fd);
        return -2;
    }
    /* It may have been uploaded and removed between our open and the lock. */
    if (!file_exists(p)) {
        close(fd);
        return -1;
    }
    return fd;
}

/* One attempt at a job, outside Q.mu. Returns 1 when the job is finished
 * (uploaded or dead-lettered or gone), 0 when it must be retried later. */
static int run_job(rjob *j, int *retry)
{
    const settings *s = &Q.a->s;
    vx_error err;
    *retry = 0;
    int fd = lock_job(s, j);
    if (fd == -1) return 1; /* gone: uploaded by another process */
    if (fd == -2) { /* another process has it; it stays a dead letter */
        j->busy = 1;
        return 1;
    }
    j->attempts++;
    /* Each attempt goes to the sink in service when it starts: one started
     * before a reload finishes on the old sink (the reference keeps it
     * loaded), a retry or a job still queued goes to the new one. */
    char sink_name[128] = "";
    svc_gen *g = svc_acquire();
    plug_instance *sink = svc_sink(g);
    int rc;
    if (sink) {
        /* Half uploaded to a sink since replaced: the new one gets both
         * files, so a recording never lies split over two sinks. */
        if (j->done_gen != svc_id(g)) j->wav_done = j->json_done = 0;
        j->done_gen = svc_id(g);
        snprintf(sink_name, sizeof sink_name, "%s", sink->name);
        rc = upload_job(sink, s, j, &err);
    } else {
        memset(&err, 0, sizeof err);
        err.code = VX_EUNAVAIL;
        err.retryable = 1;
        snprintf(err.msg, sizeof err.msg, "no recording sink in service");
        rc = VX_EUNAVAIL;
    }
    svc_release(g);
    pthread_mutex_lock(&Q.mu);
    int abandoned = j->abandoned;
    if (!abandoned) j->finishing = 1;
    int stopping = Q.stopping;
    uint64_t deadline = Q.drain_deadline_ns;
    pthread_mutex_unlock(&Q.mu);
    if (abandoned) {
        /* shutdown already moved it (files kept under the lock's fd) */
        close(fd);
        return 1;
    }
    if (rc == 0) {
        remove_job_files(job_dir(s, j), j->id);
        close(fd);
        if (j->dead) {
            int n = atomic_fetch_sub(&Q.dead_count, 1) - 1;
            metrics_gauge_set(s_dead_jobs, n < 0 ? 0 : n);
        }
        metrics_counter_inc(s_ok);
        char att[16];
        snprintf(att, sizeof att, "%d", j->attempts);
        log_info("recording uploaded", "session_id", j->id, "sink", sink_name, "attempts", att,
                 "from", j->dead ? "dead-letter" : "spool");
        return 1;
    }
    close(fd);
    int can_retry = err.retryable && j->attempts <= settings_live_rec_max_retries() && !stopping;
    if (can_retry) {
        uint64_t due = mono_ns() + backoff_ns(s, j->attempts);
        if (deadline && due > deadline) stopping = 1; /* the retry would come after shutdown */
        else j->due_ns = due;
        can_retry = !stopping;
    }
    if (can_retry) {
        metrics_counter_inc(s_retries);
        char att[16];
        snprintf(att, sizeof att, "%d", j->attempts);
        log_warn("recording upload failed; retrying", "session_id", j->id, "attempt", att, "error", err.msg);
        *retry = 1;
        return 0;
    }
    const char *reason = !err.retryable ? "not_retryable" : stopping ? "shutdown" : "retries_exhausted";
    char detail[400];
    snprintf(detail, sizeof detail, "%s: %s", gate_error_name(err.code ? err.code : rc), err.msg);
    dead_letter(s, j, reason, detail);
    metrics_counter_inc(s_failed);
    return 1;
}

static void *worker(void *arg)
{
    pthread_setname_np(pthread_self(), "vx-recording"); /* for top -H, perf, gdb */
    int slot = (int)(intptr_t)arg;
    pthread_mutex_lock(&Q.mu);
    for (;;) {
        uint64_t now = mono_ns();
        if (Q.stopping && Q.head == NULL) break;
        if (!Q.stopping && Q.a->s.rec_replay_interval_ms > 0 && now >= Q.next_replay_ns) {
            Q.next_replay_ns = now + (uint64_t)Q.a->s.rec_replay_interval_ms * 1000000ull;
            pthread_mutex_unlock(&Q.mu);
            replay_scan();
            pthread_mutex_lock(&Q.mu);
            continue;
        }
        rjob **pp = &Q.head, **pick = NULL;
        uint64_t next_due = UINT64_MAX;
        for (; *pp; pp = &(*pp)->next) {
            if ((*pp)->due_ns <= now) {
                pick = pp;
                break;
            }
            if ((*pp)->due_ns < next_due) next_due = (*pp)->due_ns;
        }
        if (pick == NULL) {
            if (Q.stopping) break; /* only backoffs left: recording_stop dead-letters them */
            if (Q.a->s.rec_replay_interval_ms > 0 && Q.next_replay_ns < next_due) next_due = Q.next_replay_ns;
            if (next_due == UINT64_MAX) {
                pthread_cond_wait(&Q.cv, &Q.mu);
            } else {
                struct timespec ts = {(time_t)(next_due / 1000000000ull), (long)(next_due % 1000000000ull)};
                pthread_cond_timedwait(&Q.cv, &Q.mu, &ts);
            }
            continue;
        }
        rjob *j = *pick;
        *pick = j->next;
        Q.depth--;
        metrics_gauge_set(s_depth, Q.depth);
        Q.inflight[slot] = j;
        pthread_mutex_unlock(&Q.mu);
        int retry;
        int finished = run_job(j, &retry);
        pthread_mutex_lock(&Q.mu);
        Q.inflight[slot] = NULL;
        j->finishing = 0;
        if (j->abandoned) {
            j->abandoned = 2; /* recording_stop frees it */
        } else if (finished) {
            free(j);
        } else {
            push(j);
        }
        pthread_cond_broadcast(&Q.cv);
    }
    pthread_mutex_unlock(&Q.mu);
    return NULL;
}

/* ------------------------------------------------------------ start / stop */

/* Complete jobs a crash left in the spool, and captures it interrupted. */
static void recover_spool(const settings *s, char ***ids, int *n_ids)
{
    char live[PATH_MAX];
    *ids = NULL;
    *n_ids = 0;
    fs_remove_temporaries(s->rec_spool_dir);
    snprintf(live, sizeof live, "%s/live", s->rec_spool_dir);
    DIR *d = opendir(live);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (e->d_name[0] == '.' || !persist_valid_id(e->d_name)) continue;
            if (recorder_salvage(s, e->d_name) == 0)
                log_warn("recording of an interrupted session salvaged (marked incomplete)", "session_id", e->d_name);
        }
        closedir(d);
    }
    int n = list_jobs(s->rec_spool_dir, ids);
    *n_ids = n < 0 ? 0 : n;
}

static int make_dirs(const settings *s, char *err, size_t errlen)
{
    char live[PATH_MAX];
    snprintf(live, sizeof live, "%s/live", s->rec_spool_dir);
    const char *dirs[] = {s->rec_spool_dir, live, s->rec_dead_letter_dir};
    const char *keys[] = {"spool_dir", "spool_dir", "dead_letter_dir"};
    for (int i = 0; i < 3; i++) {
        if (fs_mkdirs(dirs[i], 0750) != 0 || access(dirs[i], W_OK) != 0) {
            snprintf(err, errlen, "[recording] %s: cannot create or write %s: %s", keys[i], dirs[i], strerror(errno));
            return -1;
        }
    }
    return 0;
}

int recording_start(app *a, char *err, size_t errlen)
{
    const settings *s = &a->s;
    Q.a = a;
    svc_gen *g = svc_acquire();
    char sink_name[128];
    snprintf(sink_name, sizeof sink_name, "%s", svc_sink(g) ? svc_sink(g)->name : "");
    svc_release(g);
    if (!s->rec_enabled || !*sink_name) return 0;
    if (make_dirs(s, err, errlen) != 0) return -1;
    fs_remove_temporaries(s->rec_dead_letter_dir);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&Q.cv, &ca);
    pthread_condattr_destroy(&ca);
    Q.inflight = calloc((size_t)s->rec_workers, sizeof *Q.inflight);
    Q.threads = calloc((size_t)s->rec_workers, sizeof *Q.threads);
    if (Q.inflight == NULL || Q.threads == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    srand((unsigned)(mono_ns() ^ (uint64_t)getpid()));
    Q.stopping = 0;
    Q.on = 1;
    /* The spool first: those jobs never had a chance. */
    char **ids;
    int n_ids;
    recover_spool(s, &ids, &n_ids);
    for (int i = 0; i < s->rec_workers; i++) {
        if (pthread_create(&Q.threads[i], NULL, worker, (void *)(intptr_t)i) != 0) {
            snprintf(err, errlen, "cannot start recording upload threads");
            pthread_mutex_lock(&Q.mu);
            Q.stopping = 1;
            pthread_cond_broadcast(&Q.cv);
            pthread_mutex_unlock(&Q.mu);
            for (int k = 0; k < i; k++) pthread_join(Q.threads[k], NULL);
            free_ids(ids, n_ids);
            Q.on = 0;
            return -1;
        }
        Q.n_threads = i + 1;
    }
    for (int i = 0; i < n_ids; i++) {
        log_info("recording left in the spool by an earlier run re-submitted", "session_id", ids[i]);
        recording_submit(ids[i]);
    }
    free_ids(ids, n_ids);
    /* Dead letters now, then every replay_interval (the workers do it). */
    pthread_mutex_lock(&Q.mu);
    Q.next_replay_ns = mono_ns() + (uint64_t)s->rec_replay_interval_ms * 1000000ull;
    pthread_mutex_unlock(&Q.mu);
    replay_scan();
    char w[16], q[16];
    snprintf(w, sizeof w, "%d", s->rec_workers);
    snprintf(q, sizeof q, "%d", s->rec_queue_size);
    log_info("recording on", "sink", sink_name, "spool_dir", s->rec_spool_dir, "dead_letter_dir",
             s->rec_dead_letter_dir, "workers", w, "queue_size", q);
    return 0;
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int recording_stop(long long live_ms, long long upload_ms)
{
    if (!Q.on) return 0;
    const settings *s = &Q.a->s;
    int rc = 0;
    /* Captures of the sessions just closed are still being written. */
    uint64_t t0 = mono_ns();
    while (atomic_load(&Q.live) > 0 && mono_ns() - t0 < (uint64_t)live_ms * 1000000ull) sleep_ms(20);
    if (atomic_load(&Q.live) > 0) {
        char n[16];
        snprintf(n, sizeof n, "%d", atomic_load(&Q.live));
        log_error("recordings still being written at shutdown; their spool files are recovered at the next start",
                  "captures", n);
    }
    /* Let the queue empty until the deadline. */
    uint64_t deadline = mono_ns() + (uint64_t)upload_ms * 1000000ull;
    pthread_mutex_lock(&Q.mu);
    Q.drain_deadline_ns = deadline;
    pthread_cond_broadcast(&Q.cv);
    for (;;) {
        int busy = 0;
        for (int i = 0; i < Q.n_threads; i++) busy |= Q.inflight[i] != NULL;
        int ready = 0;
        for (rjob *j = Q.head; j; j = j->next) ready |= j->due_ns <= deadline;
        if ((!busy && !ready) || mono_ns() >= deadline) break;
        pthread_mutex_unlock(&Q.mu);
        sleep_ms(20);
        pthread_mutex_lock(&Q.mu);
    }
    /* What is left waits in the dead-letter folder for the next start. */
    Q.stopping = 1;
    rjob *left = Q.head;
    Q.head = NULL;
    Q.depth = 0;
    metrics_gauge_set(s_depth, 0);
    pthread_cond_broadcast(&Q.cv);
    pthread_mutex_unlock(&Q.mu);
    while (left) {
        rjob *n = left->next;
        dead_letter(s, left, "shutdown", "still queued when shutdown_upload_timeout ran out");
        free(left);
        left = n;
    }
    /* Uploads still running get a moment to return (a failure now is
     * dead-lettered by its worker); one stuck in the sink is given up on:
     * its files are dead-lettered here (the sink keeps reading them through
     * its open descriptor) and its thread is left behind. */
    rjob *stuck[64];
    int n_stuck = 0;
    uint64_t grace = mono_ns() + 2000000000ull;
    pthread_mutex_lock(&Q.mu);
    for (;;) {
        int busy = 0;
        for (int i = 0; i < Q.n_threads; i++) busy |= Q.inflight[i] != NULL;
        if (!busy) break;
        if (mono_ns() >= grace) {
            for (int i = 0; i < Q.n_threads; i++) {
                rjob *j = Q.inflight[i];
                if (j && !j->finishing && !j->abandoned && n_stuck < 64) {
                    j->abandoned = 1;
                    stuck[n_stuck++] = j;
                }
            }
            int finishing = 0;
            for (int i = 0; i < Q.n_threads; i++) finishing |= Q.inflight[i] && Q.inflight[i]->finishing;
            if (!finishing) break;
        }
        pthread_mutex_unlock(&Q.mu);
        sleep_ms(10);
        pthread_mutex_lock(&Q.mu);
    }
    pthread_mutex_unlock(&Q.mu);
    for (int i = 0; i < n_stuck; i++)
        dead_letter(s, stuck[i], "shutdown", "upload still running in the sink when shutdown_upload_timeout ran out");
    pthread_mutex_lock(&Q.mu);
    for (int i = 0; i < n_stuck; i++)
        if (stuck[i]->abandoned != 2) rc = -1;
    pthread_mutex_unlock(&Q.mu);
    if (rc == 0) {
        for (int i = 0; i < Q.n_threads; i++) pthread_join(Q.threads[i], NULL);
        for (int i = 0; i < n_stuck; i++) free(stuck[i]);
        free(Q.threads);
        free(Q.inflight);
        Q.threads = NULL;
        Q.inflight = NULL;
        Q.n_threads = 0;
        pthread_cond_destroy(&Q.cv);
    } else {
        log_error("a recording upload is still running in the sink at shutdown; its job was dead-lettered");
    }
    Q.on = 0;
    return rc;
}

/* ------------------------------------------------------------ replay CLI */

int recording_replay(app *a)
{
    const settings *s = &a->s;
    char err[512];
    Q.a = a;
    svc_gen *g = svc_acquire();
    int has_sink = svc_sink(g) != NULL;
    svc_release(g);
    if (!has_sink) {
        fprintf(stderr, "voxray: recording is not enabled in this configuration ([recording] enabled = true)\n");
        return -1;
    }
    if (make_dirs(s, err, sizeof err) != 0) {
        fprintf(stderr, "voxray: %s\n", err);
        return -1;
    }
    char **ids;
    int n = list_jobs(s->rec_dead_letter_dir, &ids);
    if (n < 0) {
        fprintf(stderr, "voxray: cannot read %s: %s\n", s->rec_dead_letter_dir, strerror(errno));
        return -1;
    }
    int left = 0, done = 0;
    atomic_store(&Q.dead_count, n);
    for (int i = 0; i < n; i++) {
        rjob j;
        memset(&j, 0, sizeof j);
        snprintf(j.id, sizeof j.id, "%s", ids[i]);
        j.dead = 1;
        int finished = 0, retry = 0;
        while (!finished) {
            finished = run_job(&j, &retry);
            if (!finished) sleep_ms((int)((j.due_ns - mono_ns()) / 1000000ull) + 1);
        }
        char p[PATH_MAX];
        int still = file_path(p, sizeof p, s->rec_dead_letter_dir, j.id, ".wav") == 0 && file_exists(p);
        printf("%-40s %s\n", j.id,
               !still ? "uploaded"
               : j.busy ? "skipped (another voxray process is uploading it now)"
                        : "FAILED (kept in the dead-letter folder)");
        if (still) left++;
        else done++;
    }
    free_ids(ids, n);
    printf("%d uploaded, %d still dead-lettered\n", done, left);
    return left;
}
