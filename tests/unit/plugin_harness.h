/*
 * plugin_harness: what every test program that loads a real provider .so
 * needs, kept in one place.
 *
 *   - a test vx_host_api: logs to stderr and into a per-instance buffer the
 *     test can search, real monotonic clock, malloc/free, the host's own
 *     timer thread (host/base/defer.c) behind defer, defer_id and defer_cancel, the
 *     instance's config, counters/gauges/histograms kept by name;
 *   - a config builder that does what the host does (every schema key, its
 *     default unless the test gives a value);
 *   - dlopen + vx_plugin_entry, and a fixture that owns the instances,
 *     event recorders, streams and scratch files of one test and releases
 *     them in the safe order even when an assertion failed half way;
 *   - STT/LLM/TTS event recorders (mutex + condition variable) with timed
 *     waits, so assertions run on the main thread only;
 *   - RIFF WAVE reading, speech made with flite, child processes started
 *     and stopped by PID, a free loopback port.
 *
 * Functions whose name says they assert (ph_fx_*) fail the running cmocka
 * test on misuse (too many instances, a key the plugin does not declare);
 * the others return an error value and never touch cmocka.
 */
#ifndef VX_TEST_PLUGIN_HARNESS_H
#define VX_TEST_PLUGIN_HARNESS_H

#include <pthread.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <voxray/plugin.h>

/* ---------------------------------------------------------------- clock */

/* CLOCK_MONOTONIC in nanoseconds; also the test host's now_ns. */
uint64_t ph_now_ns(void);
/* Milliseconds since t0, a ph_now_ns() value. */
uint64_t ph_ms_since(uint64_t t0);
/* Sleep ms milliseconds, resumed after signals. */
void ph_sleep_ms(unsigned ms);

/* ---------------------------------------------------------------- test host */

/* How long every timed wait of the harness lasts before it gives up
 * (recorder waits, held callbacks, log waits, a child's start). Set it in
 * main: valgrind runs some decoders 50x slower. Default 20000. */
extern unsigned ph_wait_ms;
/* Print every log line to stderr as "  [instance] level text" (default 1). */
extern int ph_log_echo;
/* Lines below this level are neither kept in vx_host.log nor reported as
 * enabled unless ph_log_echo is set (default VX_LOG_DEBUG: all). */
extern int ph_log_keep;

#define PH_KV 32
#define PH_METRICS 8

struct vx_metric {
    vx_host *h;
    vx_metric_type type;
    char name[80];
    double value; /* counters and histograms: the sum; gauges: the last set */
};

/* The per-instance handle the plugin gets: its config, what it logged and
 * the metrics it registered; mu guards the last two (plugin threads write
 * them). Filled by ph_host_config, released by ph_host_release. */
struct vx_host {
    vx_config cfg;
    vx_kv kv[PH_KV];
    pthread_mutex_t mu;
    char log[16384];
    size_t log_len;
    struct vx_metric metrics[PH_METRICS];
    size_t n_metrics;
};

/* The host API given to vx_plugin_entry and init. Every callback accepts a
 * NULL host (the loader tests init with none): the line is then only
 * printed, config_get finds nothing and metric_register refuses. A full
 * log keeps what fits and drops the rest; metric_register returns NULL
 * past PH_METRICS. */
extern const vx_host_api ph_api;

/* Build h's config as the host does: every key of p's schema with its
 * default, then the (key, value) pairs of ap, ending with a NULL key.
 * instance is the config's instance name (not copied). Returns 0, or -1
 * when a key is not in the schema or the schema exceeds PH_KV (h is then
 * left unusable and needs no release). */
int ph_host_vconfig(vx_host *h, const vx_plugin_info *p, const char *instance, va_list ap);
/* Set one key of a configured h; 0, or -1 when the schema lacks it. */
int ph_host_set(vx_host *h, const char *key, const char *value);
/* The current value of key in h's config, or NULL. */
const char *ph_host_get(vx_host *h, const char *key);
/* Release what ph_host_vconfig set up (its mutex). */
void ph_host_release(vx_host *h);

/* 1 when h logged a line containing needle. */
int ph_logged(vx_host *h, const char *needle);
/* Wait up to ph_wait_ms until h logged a line containing needle; 1 when it
 * did, 0 on time out. */
int ph_log_wait(vx_host *h, const char *needle);
/* The value of the metric h registered as name, or -1 when none. */
double ph_metric_value(vx_host *h, const char *name);

/* ---------------------------------------------------------------- plugins */

/* dlopen path (RTLD_NOW | RTLD_LOCAL) and call its vx_plugin_entry with
 * ph_api. Returns the descriptor, with the handle in *dl; NULL when the
 * file cannot be loaded or its entry is missing or returns NULL (the reason
 * on stderr, *dl closed and NULL). */
const vx_plugin_info *ph_plugin_load(const char *path, void **dl);
/* dlclose a handle from ph_plugin_load; NULL is ignored. */
void ph_plugin_unload(void *dl);

/* ---------------------------------------------------------------- recorder */

#define PH_REC_MAX 256    /* partials and tokens kept */
#define PH_REC_FINALS 64  /* finals kept */
#define PH_REC_TEXT 256   /* bytes kept of one partial, final or token */
#define PH_REC_CHUNKS 4096 /* audio chunk sizes kept */

/* Everything one stream delivered, in order. Counters count every event,
 * the arrays keep the first ones only. Event numbers (*_at) are 1-based
 * positions in the stream's sequence of events, 0 for never. `closed` is
 * set by ph_fx_close right after close() returned, so any later event is
 * counted in after_close. */
typedef struct ph_seen {
    int closed, after_close;
    size_t events;
    uint64_t first_ns, last_ns; /* first and last output (not done/error) */
    uint64_t final_ns, end_ns;  /* last final; last done or error */
    char partials[PH_REC_MAX][PH_REC_TEXT];
    size_t partial_at[PH_REC_MAX];
    size_t n_partials;
    char finals[PH_REC_FINALS][PH_REC_TEXT];
    float confidence[PH_REC_FINALS];
    size_t final_at[PH_REC_FINALS];
    size_t n_finals;
    char tokens[PH_REC_MAX][PH_REC_TEXT];
    size_t n_tokens;
    char text[16384]; /* the tokens, concatenated, as far as they fit */
    size_t chunks[PH_REC_CHUNKS];
    size_t n_chunks;
    size_t first_audio_at;
    int16_t *pcm; /* every frame of audio; owned by the recorder */
    size_t frames, pcm_cap;
    int done;
    size_t done_at;
    vx_usage usage;
    int got_usage;
    int errors;
    vx_error err;
} ph_seen;

/* The events' user pointer. With hold set, the first on_audio parks the
 * plugin's thread (at most ph_wait_ms) until ph_rec_release: a test can
 * then act "in the middle of a synthesis" without timing anything. */
typedef struct ph_rec {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int hold;
    ph_seen d;
} ph_rec;

/* A zeroed recorder, or NULL when out of memory. Its condition variable
 * runs on CLOCK_MONOTONIC. Free it with ph_rec_free once no stream can
 * call it any more. */
ph_rec *ph_rec_new(void);
void ph_rec_free(ph_rec *r);

vx_stt_events ph_stt_events(ph_rec *r);
vx_llm_events ph_llm_events(ph_rec *r);
vx_tts_events ph_tts_events(ph_rec *r);

typedef int (*ph_pred)(const ph_seen *d, size_t n);

int ph_has_partials(const ph_seen *d, size_t n); /* n_partials >= n */
int ph_has_finals(const ph_seen *d, size_t n);   /* n_finals >= n */
int ph_has_tokens(const ph_seen *d, size_t n);   /* n_tokens >= n */
int ph_has_chunks(const ph_seen *d, size_t n);   /* n_chunks >= n */
int ph_has_errors(const ph_seen *d, size_t n);   /* errors >= n */
int ph_has_ended(const ph_seen *d, size_t n);    /* done + errors >= n */

/* Wait up to ph_wait_ms until pred(d, n) holds; 1 when it does, 0 on time
 * out. */
int ph_rec_wait(ph_rec *r, ph_pred pred, size_t n);
/* A copy of what r saw, taken under its mutex, for assertions. The pcm
 * pointer stays r's. Returns copy. */
ph_seen *ph_rec_snap(ph_rec *r, ph_seen *copy);
/* Events seen so far. */
size_t ph_rec_events(ph_rec *r);
/* Let a held on_audio return (see hold). */
void ph_rec_release(ph_rec *r);

/* ---------------------------------------------------------------- fixture */

#define PH_FX_INST 4
#define PH_FX_MAX 256
#define PH_FX_FILES 4

/* Instances, recorders, streams and scratch files of one test. Teardown
 * (ph_fx_free) runs in the only safe order: held recorders released,
 * streams closed (so no event can reach a freed recorder), recorders
 * freed, instances shut down, files removed. */
typedef struct ph_fixture {
    const vx_plugin_info *p;
    vx_host hosts[PH_FX_INST];
    void *inst[PH_FX_INST]; /* NULL when init failed */
    size_t n_inst;
    ph_rec *recs[PH_FX_MAX];
    size_t n_recs;
    struct {
        vx_kind kind;
        vx_stream *s;
    } streams[PH_FX_MAX];
    size_t n_streams;
    char files[PH_FX_FILES][128];
    size_t n_files;
} ph_fixture;

/* A zeroed fixture for plugin p, or NULL when out of memory. */
ph_fixture *ph_fx_new(const vx_plugin_info *p);
void ph_fx_free(ph_fixture *f);

/* Configure the next host slot (ph_host_vconfig); asserts there is a slot
 * and every key is declared. Returns the host; init it with ph_fx_init. */
vx_host *ph_fx_host(ph_fixture *f, const char *instance, va_list ap);
/* Init the instance of the host ph_fx_host just configured. Returns init's
 * code (err filled by the plugin); the instance, NULL on failure, is
 * f->inst[f->n_inst - 1] either way. */
int ph_fx_init(ph_fixture *f, vx_error *err);
/* Both of the above. */
int ph_fx_vinit(ph_fixture *f, const char *instance, vx_error *err, va_list ap);
/* An instance that must init (the plugin's reason on stderr otherwise);
 * returns its index. */
size_t ph_fx_vinst(ph_fixture *f, const char *instance, va_list ap);

/* A new recorder, freed at teardown. Asserts. */
ph_rec *ph_fx_rec(ph_fixture *f);
/* Close s at teardown with the vtable of kind. Asserts there is room. */
void ph_fx_track(ph_fixture *f, vx_kind kind, vx_stream *s);
/* Close s now (with the vtable it was tracked with, or the plugin's only
 * one when untracked) and mark r, when not NULL, closed. */
void ph_fx_close(ph_fixture *f, vx_stream *s, ph_rec *r);
/* close() of the stream vtable of kind. */
void ph_stream_close(const vx_plugin_info *p, vx_kind kind, vx_stream *s);
/* A new file holding text, made with mkstemp from tmpl ("/tmp/x_XXXXXX"),
 * removed at teardown. Returns its path. Asserts. */
const char *ph_fx_file(ph_fixture *f, const char *tmpl, const char *text);
/* Remember path (already made by the test) for removal at teardown. */
void ph_fx_remove_later(ph_fixture *f, const char *path);

/* ---------------------------------------------------------------- audio */

/* A RIFF WAVE file of mono s16le PCM at rate Hz into a malloc'd *pcm of *n
 * frames (caller frees). 0 on success; -1 when the file is unreadable,
 * not WAVE, another format or rate, or memory runs out (*pcm then NULL). */
int ph_wav_read(const char *path, uint32_t rate, int16_t **pcm, size_t *n);
/* Speak text with flite -voice voice into path (a 16 kHz WAVE file).
 * 0 when flite exited 0, -1 when it could not run or failed. */
int ph_flite(const char *voice, const char *text, const char *path);

/* ---------------------------------------------------------------- processes */

/* Start argv[0] (searched in PATH) as a child that dies with this process
 * (PR_SET_PDEATHSIG with sig). stdin goes to /dev/null; stdout goes to
 * stdout_fd when >= 0, to /dev/null when -2, is inherited when -1; stderr
 * is inherited. Returns its PID, or -1 when fork failed (an exec failure
 * shows as the child exiting 127). */
pid_t ph_child_start(char *const argv[], int stdout_fd, int sig);
/* Send sig to pid and reap it; pid <= 0 is ignored. */
void ph_child_stop(pid_t pid, int sig);
/* Run argv to its end; 0 when it exited 0, -1 otherwise. */
int ph_run(char *const argv[]);
/* A loopback TCP port that was free a moment ago, or -1. */
int ph_free_port(void);

#endif
