/*
 * voxray: command line, start-up, signals and shutdown.
 *
 * Start-up order: parse and validate the whole configuration (core keys,
 * then every plugin section against its plugin's schema) before any plugin
 * init runs; then bind the port, start the HTTP server (answering /ready
 * with 503 "starting"), init the plugins, run the first health round and
 * only then report ready.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "base/acl.h"
#include "app.h"
#include "net/auth.h"
#include "net/client_limits.h"
#include "base/cfg.h"
#include "base/defer.h"
#include "net/front.h"
#include "plugin/gate.h"
#include "plugin/health.h"
#include "net/http.h"
#include "plugin/loader.h"
#include "base/log.h"
#include "metrics.h"
#include "plugin/plugins.h"
#include "plugin/services.h"
#include "recording/recorder.h"
#include "recording/recording.h"
#include "session/session.h"
#include "settings.h"
#include "pipeline/stage.h"
#include "base/worker.h"
#include "net/ws.h"
#include "net/webrtc.h"

#ifndef VX_SYSCONFDIR
#define VX_SYSCONFDIR "/usr/local/etc"
#endif
#define DEFAULT_CONFIG VX_SYSCONFDIR "/voxray/voxray.ini"

static void usage(FILE *f)
{
    fprintf(f,
            "Usage: voxray [-c FILE] [--check-config | --list-plugins | --plugin-help NAME |\n"
            "                         --replay-recordings]\n"
            "\n"
            "  -c, --config FILE     configuration file (default " DEFAULT_CONFIG ")\n"
            "  -t, --check-config    validate the configuration and the plugins it names, then exit 0/1\n"
            "      --list-plugins    list the plugin files found in plugin_dir; exits 2 if\n"
            "                        any is REFUSED, 1 if no directory can be read\n"
            "      --plugin-help NAME  describe plugin NAME and its configuration keys\n"
            "      --plugin-dir DIR  override [server] plugin_dir for --list-plugins/--plugin-help\n"
            "      --replay-recordings  upload every recording in [recording] dead_letter_dir now\n"
            "                        through the configured sink; exit 0 when none is left, 1 otherwise\n"
            "  -V, --version         print the version and plugin ABI\n"
            "  -h, --help            this text\n"
            "\n"
            "Every key can be overridden from the environment as VOXRAY_<SECTION>_<KEY>,\n"
            "e.g. VOXRAY_LOG_LEVEL=debug or VOXRAY_PLUGIN_REDIS_ADDRESS=10.0.0.5:6379.\n");
}

/* Load and validate the file; on failure print one line and return -1. */
static int load_config(const char *path, cfg_file **c, settings *s)
{
    char err[1024];
    if (cfg_parse_file(path, c, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        return -1;
    }
    if (settings_load(*c, s, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        cfg_free(*c);
        *c = NULL;
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------ --list-plugins */

static void list_cb(void *user, const char *file, const loader_plugin *p, const char *why)
{
    int *bad = user;
    char kinds[64];
    if (p == NULL) {
        const char *base = strrchr(file, '/');
        char name[64];
        snprintf(name, sizeof name, "%s", base ? base + 1 : file);
        char *dot = strstr(name, ".so");
        if (dot) *dot = '\0';
        printf("%-20s REFUSED  %s\n", name, why);
        (*bad)++;
        return;
    }
    printf("%-20s %-14s %-8s ABI %u.%-3u %s\n", p->info.name,
           loader_kinds_str(p->info.kinds, kinds, sizeof kinds),
           p->info.version ? p->info.version : "", p->info.abi_major, p->info.abi_minor,
           p->info.description ? p->info.description : "");
}

static int list_plugins(const char *dir)
{
    char err[1024];
    int bad = 0;
    printf("plugins in %s\n", dir);
    int n = loader_scan(dir, plug_host_api(), list_cb, &bad, err, sizeof err);
    if (n < 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        return 1;
    }
    if (n == 0) printf("(none)\n");
    /* Exit 2 when a file is refused, so packaging scripts notice. */
    return bad ? 2 : 0;
}

/* ------------------------------------------------------------ --plugin-help */

static const char *type_name(vx_config_type t)
{
    switch (t) {
    case VX_CFG_STRING: return "string";
    case VX_CFG_INT: return "integer";
    case VX_CFG_FLOAT: return "number";
    case VX_CFG_BOOL: return "boolean";
    case VX_CFG_ENUM: return "enum";
    case VX_CFG_DURATION: return "duration";
    case VX_CFG_ADDRESS: return "address";
    case VX_CFG_SIZE: return "size";
    default: return "?";
    }
}

static int plugin_help(const char *dir, const char *name)
{
    char err[1024], kinds[64], allowed[256];
    loader_plugin *p = loader_open(dir, name, plug_host_api(), err, sizeof err);
    if (p == NULL) {
        /* Accept the short instance-style name too: "redis" -> store_redis. */
        static const char *const pre[] = {"store_", "stt_", "llm_", "tts_", "rec_", NULL};
        char alt[256];
        for (int i = 0; pre[i] && p == NULL; i++) {
            char e2[1024];
            snprintf(alt, sizeof alt, "%s%s", pre[i], name);
            p = loader_open(dir, alt, plug_host_api(), e2, sizeof e2);
        }
        if (p == NULL) {
            log_fmt(VX_LOG_ERROR, "%s", err);
            return 1;
        }
    }
    printf("%s %s (%s)\n", p->info.name, p->info.version ? p->info.version : "",
           loader_kinds_str(p->info.kinds, kinds, sizeof kinds));
    printf("  %s\n", p->info.description ? p->info.description : "");
    printf("  file: %s\n  plugin ABI: %u.%u\n\n", p->path, p->info.abi_major, p->info.abi_minor);
    printf("Configuration ([plugin.NAME] with plugin = %s):\n", p->info.name);
    const vx_config_key *k = p->info.config;
    if (k == NULL || k->key == NULL) printf("  (no keys)\n");
    for (; k && k->key; k++) {
        printf("  %-18s %-9s default: %s%s%s\n", k->key, type_name(k->type),
               k->def && *k->def ? ((k->flags & VX_CFG_SECRET) ? "***" : k->def) : "(none)",
               (k->flags & VX_CFG_REQUIRED) ? ", required" : "",
               (k->flags & VX_CFG_SECRET) ? ", secret (never logged)" : "");
        printf("      %s\n", k->help ? k->help : "");
        printf("      allowed: %s\n", cfg_allowed(k, allowed, sizeof allowed));
    }
    loader_close(p);
    return 0;
}

/* ------------------------------------------------------------ run */

static void apply_buckets(metrics_registry *reg, const settings *s)
{
    for (size_t i = 0; i < s->n_buckets; i++)
        metrics_set_buckets(reg, s->buckets[i].family, s->buckets[i].bounds, s->buckets[i].n);
}

static void front_log(void *user, const char *line)
{
    (void)user;
    log_warn("listener", "detail", line);
}

/* glibc's allocator, left alone, makes a long-running server's memory creep:
 * a freed block above the mmap threshold (a reply's audio queue grows past
 * 128 KiB) raises that threshold and the trim threshold with it, so later
 * large blocks come from the arenas and are never given back, and the
 * worker and plugin threads spread small blocks over up to 8 arenas per
 * core. A fixed threshold keeps large blocks in mmap (returned on free),
 * and one arena per core is plenty for a server that hands work between
 * threads (BENCHMARKS.md, "Memory over a long run"). An operator's own
 * MALLOC_* or GLIBC_TUNABLES settings win. */
static void tune_allocator(void)
{
    if (getenv("GLIBC_TUNABLES") != NULL) return;
    if (getenv("MALLOC_MMAP_THRESHOLD_") == NULL) mallopt(M_MMAP_THRESHOLD, 128 * 1024);
    if (getenv("MALLOC_ARENA_MAX") == NULL) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        mallopt(M_ARENA_MAX, n < 2 ? 2 : n > 64 ? 64 : (int)n);
    }
}

/* Every session, every connection still sending its head and every refused
 * one lingering holds a descriptor, and the usual soft limit of 1024 would
 * run out long before [server] max_sessions and max_pending do (accept
 * then fails, and the front sheds new connections with 503). As Redis and
 * the Go runtime do, take the soft limit up to the hard one; say so when
 * even that is short of what the limits need. */
static void raise_open_files(const settings *s)
{
    struct rlimit rl;
    unsigned long long need = (unsigned long long)s->max_sessions + 2ull * (unsigned long long)s->max_pending + 256;
    char have[32], want[32];

    if (getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur < rl.rlim_max) {
        rlim_t old = rl.rlim_cur;
        rl.rlim_cur = rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) != 0) rl.rlim_cur = old;
    }
    if (rl.rlim_cur != RLIM_INFINITY && (unsigned long long)rl.rlim_cur < need) {
        snprintf(have, sizeof have, "%llu", (unsigned long long)rl.rlim_cur);
        snprintf(want, sizeof want, "%llu", need);
        log_warn("open file limit is below what [server] max_sessions + 2 x max_pending need; raise it "
                 "(ulimit -n, systemd LimitNOFILE=) or lower those",
                 "limit", have, "need", want);
    }
}

/* A load balancer every client comes through would reach any per-address
 * cap at once; its clients are told apart later, by X-Forwarded-For. */
static int front_exempt(void *user, const struct sockaddr *addr, socklen_t addrlen)
{
    (void)user;
    (void)addrlen;
    return limits_trusted_proxy(addr);
}

/* Items of one section, "key=value" lines, for comparing two parses; keys
 * in `skip` (a NULL-terminated list) are left out. */
static char *section_text(const cfg_file *c, const char *section, const char *const *skip)
{
    size_t len = 1;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i].section, section) == 0)
            len += strlen(c->items[i].key) + strlen(c->items[i].value) + 2;
    char *t = calloc(1, len);
    if (t == NULL) return NULL;
    for (size_t i = 0; i < c->n; i++) {
        const cfg_item *it = &c->items[i];
        int skipped = 0;
        for (int k = 0; skip && skip[k]; k++)
            if (strcmp(it->key, skip[k]) == 0) skipped = 1;
        if (skipped || strcmp(it->section, section) != 0) continue;
        strcat(t, it->key);
        strcat(t, "=");
        strcat(t, it->value);
        strcat(t, "\n");
    }
    return t;
}

static int section_changed(const cfg_file *a, const cfg_file *b, const char *section,
                           const char *const *skip)
{
    char *x = section_text(a, section, skip), *y = section_text(b, section, skip);
    int changed = !x || !y || strcmp(x, y) != 0;
    free(x);
    free(y);
    return changed;
}

static void free_acl_later(void *arg) { acl_free(arg); }

/* Reloads, as Prometheus reports its own: voxray_config_reloads_total
 * {result}, whether the last one applied in full, and when the
 * configuration in force was last loaded whole (start or SIGHUP). */
static metrics_series *s_reload_ok, *s_reload_failed, *s_reload_last_ok, *s_reload_ts;

static int reload_metrics_init(metrics_registry *reg)
{
    static const char *const l_res[] = {"result"};
    metrics_family *n = metrics_counter_family(reg, "voxray_config_reloads_total",
                                               "SIGHUP reloads by result: success (everything applied), failure (a "
                                               "file with errors, or a part refused and kept as it was).",
                                               1, l_res);
    metrics_family *last = metrics_gauge_family(reg, "voxray_config_last_reload_successful",
                                                "1 when the last reload (or the start) applied in full, else 0.",
                                                0, NULL);
    metrics_family *ts = metrics_gauge_family(reg, "voxray_config_last_reload_success_timestamp_seconds",
                                              "UNIX time of the last load that applied in full (start or SIGHUP).",
                                              0, NULL);
    if (!n || !last || !ts) return -1;
    static const char *const ok[] = {"success"}, *const bad[] = {"failure"};
    s_reload_ok = metrics_series_get(n, ok);
    s_reload_failed = metrics_series_get(n, bad);
    s_reload_last_ok = metrics_series_get(last, NULL);
    s_reload_ts = metrics_series_get(ts, NULL);
    if (!s_reload_ok || !s_reload_failed || !s_reload_last_ok || !s_reload_ts) return -1;
    metrics_gauge_set(s_reload_last_ok, 1);
    metrics_gauge_set(s_reload_ts, (double)time(NULL));
    return 0;
}

static void reload_metrics_free(void)
{
    metrics_series_release(s_reload_ok);
    metrics_series_release(s_reload_failed);
    metrics_series_release(s_reload_last_ok);
    metrics_series_release(s_reload_ts);
    s_reload_ok = s_reload_failed = s_reload_last_ok = s_reload_ts = NULL;
}

static void reload_count(int ok)
{
    if (s_reload_ok == NULL) return;
    metrics_counter_inc(ok ? s_reload_ok : s_reload_failed);
    metrics_gauge_set(s_reload_last_ok, ok);
    if (ok) metrics_gauge_set(s_reload_ts, (double)time(NULL));
}

/* SIGHUP, the stage providers: build the set the new configuration names,
 * sharing every instance whose file and section did not change, init the
 * new ones and make it the generation new sessions start with. Sessions
 * already running finish on theirs. On any failure the running providers
 * stay, with one error line. Returns 1 if a new generation was made, 0 if
 * nothing changed, -1 on failure. */
static int reload_providers(app *a, const settings *s, cfg_file *c, const cfg_file *cur)
{
    char err[1024];
    plug_set *ns = NULL;
    stage_gen *g = stage_gen_acquire();
    const plug_set *old = stage_gen_plugins(g);
    if (old == NULL) return -1; /* not started yet */
    int rc = plug_set_load_stages(s, c, old, &ns, err, sizeof err);
    if (rc == 0 && plug_set_init(ns, a->reg, err, sizeof err) != 0) rc = -1;
    if (rc != 0) {
        log_error("SIGHUP: plugins not reloaded; the running ones stay in service", "error", err);
        plug_set_free(ns);
        stage_gen_release(g);
        return -1;
    }
    /* Nothing to do when every stage lists the same instances and the
     * stage settings are the same. */
    int same = 1;
    for (int st = 0; st < STAGE_COUNT && same; st++) {
        if (ns->n_stage[st] != old->n_stage[st]) same = 0;
        for (int i = 0; same && i < ns->n_stage[st]; i++)
            if (ns->stage[st][i] != old->stage[st][i]) same = 0;
        if (section_changed(cur, c, stage_name(st), NULL)) same = 0;
    }
    char fresh[512] = "", kept[512] = "";
    for (size_t i = 0; i < ns->n_inst; i++) {
        const plug_instance *pi = ns->inst[i];
        int shared = 0;
        for (size_t j = 0; j < old->n_inst; j++)
            if (old->inst[j] == pi) shared = 1;
        char *list = shared ? kept : fresh;
        size_t l = strlen(list);
        snprintf(list + l, 512 - l, "%s%s", l ? "," : "", pi->name);
    }
    stage_gen_release(g);
    if (same) {
        plug_set_free(ns);
        return 0;
    }
    if (stage_reload(s, ns) != 0) {
        log_error("SIGHUP: plugins not reloaded (out of memory); the running ones stay in service");
        plug_set_free(ns);
        return -1;
    }
    health_kick();
    log_info("SIGHUP: new sessions use the reloaded providers; running sessions finish on theirs",
             "new", *fresh ? fresh : "-", "kept", *kept ? kept : "-");
    return 1;
}

/* SIGHUP, the session store and the recording sink: build the pair the
 * new configuration names ([session] store, [recording] sink and their
 * [plugin.NAME] sections and files), sharing what did not change, init the
 * new instances, and ping a new store: one that does not answer is not put
 * in service. Then every later store call and upload attempt uses the new
 * pair; calls in flight finish on the old instances, which are shut down
 * and unloaded once the last returned (svc_collect). On any failure the
 * running pair stays, with one error line. Whether recording is on is not
 * reloaded: a sink is built only when it is. Returns 1 if a new pair was
 * put in service, 0 if nothing changed, -1 on failure. */
static int reload_services(app *a, const settings *s, cfg_file *c)
{
    char err[1024];
    plug_set *ns = NULL;
    svc_gen *g = svc_acquire();
    const plug_set *old = svc_plugins(g);
    if (old == NULL) return -1; /* not started yet */
    int rc = plug_set_load_services(s, c, old, old->sink != NULL, &ns, err, sizeof err);
    if (rc == 0 && plug_set_init(ns, a->reg, err, sizeof err) != 0) rc = -1;
    int new_store = rc == 0 && ns->store != old->store, new_sink = rc == 0 && ns->sink != old->sink;
    if (rc == 0 && new_store) {
        vx_error e;
        if (gate_store_ping(ns->store, &e) != 0) {
            snprintf(err, sizeof err, "the new session store '%s' does not answer: %s", ns->store->name, e.msg);
            rc = -1;
        }
    }
    if (rc != 0) {
        log_error("SIGHUP: session store and recording sink not reloaded; the running ones stay in service",
                  "error", err);
        plug_set_free(ns);
        svc_release(g);
        return -1;
    }
    if (!new_store && !new_sink) {
        plug_set_free(ns);
        svc_release(g);
        return 0;
    }
    char old_store[128], old_module[128];
    snprintf(old_store, sizeof old_store, "%s", old->store->name);
    snprintf(old_module, sizeof old_module, "%s", old->store->module);
    svc_release(g);
    if (svc_reload(ns) != 0) {
        log_error("SIGHUP: session store and recording sink not reloaded (out of memory); the running ones stay in "
                  "service");
        plug_set_free(ns);
        return -1;
    }
    if (new_store) {
        health_store_switched();
        /* What the old store alone holds is out of reach from now on. */
        if (strcmp(old_module, "store_memory") == 0)
            log_warn("SIGHUP: the session store was in memory; the sessions saved there can no longer be "
                     "resumed (running sessions save to the new store from their next change)",
                     "old", old_store, "new", ns->store->name);
        log_info("SIGHUP: the session store is replaced; saves and resumes use the new one, sessions saved only "
                 "in the old one cannot be resumed", "old", old_store, "new", ns->store->name);
    } else {
        health_kick();
    }
    if (new_sink)
        log_info("SIGHUP: the recording sink is replaced; uploads that start from now on (queued and retried "
                 "ones too) use the new one, uploads in flight finish on the old one",
                 "sink", ns->sink->name, "plugin", ns->sink->module);
    return 1;
}

/* SIGHUP: re-read the file. [log], [metrics] enabled/allow, [auth], the
 * stage providers ([stt] [llm] [tts] and their [plugin.NAME] sections and
 * files, see reload_providers) and the session store and recording sink
 * ([session] store, [recording] sink and theirs, see reload_services) take
 * effect; other changes need a restart (listeners, thread pools, folders),
 * and each changed section is named in the log. A file with errors changes
 * nothing. */
static void reload(app *a, cfg_file **cur, const char *path)
{
    cfg_file *c = NULL;
    settings s;
    char err[1024];
    memset(&s, 0, sizeof s);
    if (load_config(path, &c, &s) != 0) {
        log_error("SIGHUP: the configuration has errors; keeping the running one", "file", path);
        reload_count(0);
        return;
    }
    acl *allow = NULL;
    if (*s.metrics_allow && acl_parse(s.metrics_allow, &allow, err, sizeof err) != 0) {
        log_error("SIGHUP: [metrics] allow is invalid; keeping the running configuration", "error", err);
        settings_free(&s);
        cfg_free(c);
        reload_count(0);
        return;
    }
    /* [auth]: the keys (api_keys and keys_file, whose file is read again
     * even when the configuration did not change) and the client secret
     * limits. A bad key or an unreadable file keeps the keys in force. */
    int auth_ok = auth_load(&s, err, sizeof err) == 0;
    if (!auth_ok) log_error("SIGHUP: the API keys could not be loaded; keeping the ones in force", "error", err);
    /* The running configuration holds the environment's values of plugin
     * keys (applied when the plugins were loaded); give the new file the
     * same, or a password set only in the environment reads as a change. */
    for (size_t i = 0; i < (*cur)->n; i++) {
        const cfg_item *it = &(*cur)->items[i];
        if (it->env && strncmp(it->section, "plugin.", 7) == 0) cfg_apply_env(c, it->section, it->key);
    }
    int prov = reload_providers(a, &s, c, *cur);
    int svc = reload_services(a, &s, c);
    /* The limits and defaults read per session, per save and per upload. */
    if (s.max_sessions > settings_live_max_sessions()) raise_open_files(&s);
    settings_live_set(&s);
    log_set_level(s.log_level);
    log_set_json(s.log_json);
    log_set_transcripts(s.log_transcripts);
    atomic_store(&a->metrics_enabled, s.metrics_enabled);
    acl *old = atomic_exchange(&a->metrics_acl, allow);
    /* Requests in flight may still read the old list: free it a bit later. */
    if (old && defer_run(10000, free_acl_later, old) != 0) acl_free(old);

    /* What a reload cannot apply: every other core section, [metrics]
     * beyond enabled/allow, [stt] sample_rate, [server], [session] and
     * [recording] keys beyond those below (settings_live_set lists them).
     * plugin_dir applies to every plugin. */
    static const char *const applied_metrics[] = {"enabled", "allow", NULL};
    static const char *const applied_stage[] = {"providers", "timeout", "idle_timeout", "retries", "retry_backoff",
                                                "breaker_failures", "breaker_cooldown", NULL};
    static const char *const applied_server[] = {"plugin_dir", "max_sessions", "drain_timeout", "health_interval",
                                                 NULL};
    static const char *const applied_session[] = {"store", "ttl", "instructions", "voice", "idle_timeout",
                                                  "max_duration", NULL};
    static const char *const applied_recording[] = {"sink", "sample_rate", "max_retries", "retry_backoff",
                                                    "retry_backoff_max", NULL};
    int restart = 0;
    for (const cfg_key *k = cfg_core_schema; k->section; k++) {
        if (k != cfg_core_schema && strcmp(k->section, k[-1].section) == 0) continue;
        if (strcmp(k->section, "log") == 0 || strcmp(k->section, "auth") == 0) continue;
        const char *const *skip = strcmp(k->section, "metrics") == 0  ? applied_metrics
                                  : strcmp(k->section, "server") == 0 ? applied_server
                                  : strcmp(k->section, "session") == 0 ? applied_session
                                  : strcmp(k->section, "recording") == 0 ? applied_recording
                                  : (strcmp(k->section, "stt") == 0 || strcmp(k->section, "llm") == 0 ||
                                     strcmp(k->section, "tts") == 0)
                                      ? applied_stage
                                      : NULL;
        if (section_changed(*cur, c, k->section, skip)) {
            char sec[64];
            snprintf(sec, sizeof sec, "[%s]", k->section);
            log_warn("SIGHUP: this section changed; restart voxray to apply it", "section", sec);
            restart = 1;
        }
    }
    char applied[160];
    snprintf(applied, sizeof applied, "[log], [metrics] enabled and allow, limits%s%s%s", auth_ok ? ", [auth]" : "",
             prov > 0 ? ", providers" : "", svc > 0 ? ", store/sink" : "");
    log_info("SIGHUP: configuration reloaded", "file", path, "applied", applied,
             "restart_needed", restart ? "yes" : "no");
    /* A part refused (keys, providers, store/sink) keeps what ran before:
     * the reload did not apply in full. */
    reload_count(auth_ok && prov >= 0 && svc >= 0);
    settings_free(&s);
    cfg_free(*cur);
    *cur = c;
}

static int drain(app *a)
{
    /* Wait for live sessions to end, up to the drain deadline. */
    struct timespec t0, now;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    for (;;) {
        if (session_count() == 0) return 0;
        clock_gettime(CLOCK_MONOTONIC, &now);
        long long ms = (now.tv_sec - t0.tv_sec) * 1000LL + (now.tv_nsec - t0.tv_nsec) / 1000000;
        if (ms >= settings_live_drain_timeout_ms()) return -1;
        struct timespec nap = {0, 50 * 1000000L};
        nanosleep(&nap, NULL);
    }
}

/* voxray --replay-recordings: the sink alone, no server. */
static int replay(const char *config_path)
{
    app a;
    cfg_file *c = NULL;
    char err[1024];
    int rc = 1;
    memset(&a, 0, sizeof a);
    if (load_config(config_path, &c, &a.s) != 0) return 1;
    log_set_level(a.s.log_level);
    log_set_json(a.s.log_json);
    settings_live_set(&a.s);
    if (!a.s.rec_enabled) {
        log_error("recording is not enabled in this configuration; nothing to replay", "config", config_path);
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    signal(SIGXFSZ, SIG_IGN);
    a.reg = metrics_registry_new();
    if (a.reg == NULL || gate_metrics_init(a.reg) != 0 || recording_metrics_init(a.reg) != 0) goto out;
    if (defer_start() != 0) goto out;
    if (plug_set_load(&a.s, c, &a.plugins, err, sizeof err) != 0 ||
        plug_set_init_roles(a.plugins, a.reg, VX_KIND_SINK, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        defer_stop();
        goto out;
    }
    if (svc_init(a.plugins) != 0) {
        defer_stop();
        goto out;
    }
    a.plugins = NULL; /* the services own it now */
    int left = recording_replay(&a);
    rc = left == 0 ? 0 : 1;
    defer_stop();
    svc_shutdown();
out:
    plug_set_free(a.plugins);
    metrics_registry_free(a.reg);
    settings_free(&a.s);
    settings_live_free();
    cfg_free(c);
    log_clear_secrets();
    return rc;
}

static int run(const char *config_path, int check_only)
{
    app a;
    cfg_file *c = NULL;
    front *fr = NULL;
    char err[1024];
    int rc = 1, http_up = 0, defer_up = 0, health_up = 0, workers_up = 0, ws_up = 0, rec_up = 0;
    int sink_stuck = 0, stage_up = 0, svc_up = 0;
    sigset_t set;

    memset(&a, 0, sizeof a);
    if (load_config(config_path, &c, &a.s) != 0) return 1;
    log_set_level(a.s.log_level);
    log_set_json(a.s.log_json);
    log_set_transcripts(a.s.log_transcripts);
    settings_live_set(&a.s);

    if (plug_set_load(&a.s, c, &a.plugins, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        goto out;
    }
    /* The keys (and their file) are checked before anything starts, so a
     * typo never leaves a server open. */
    if ((check_only ? auth_check_settings(&a.s, err, sizeof err) : auth_load(&a.s, err, sizeof err)) != 0 ||
        limits_configure(&a.s, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        goto out;
    }
    if (check_only) {
        printf("configuration %s is valid: store=%s stt=[%s] llm=[%s] tts=[%s] recording=%s, %zu plugin file(s)\n",
               config_path, a.s.store, a.s.providers[0], a.s.providers[1], a.s.providers[2],
               a.s.rec_enabled ? a.s.rec_sink : "off", a.plugins->n_files);
        rc = 0;
        goto out;
    }
    if (*a.s.metrics_allow) {
        acl *allow = NULL;
        if (acl_parse(a.s.metrics_allow, &allow, err, sizeof err) != 0) {
            log_fmt(VX_LOG_ERROR, "[metrics] allow: %s", err);
            goto out;
        }
        atomic_store(&a.metrics_acl, allow);
    }
    atomic_store(&a.metrics_enabled, a.s.metrics_enabled);

    a.reg = metrics_registry_new();
    if (a.reg == NULL) goto out;
    apply_buckets(a.reg, &a.s);
    if (http_metrics_init(a.reg) != 0 || webrtc_metrics_init(a.reg) != 0 || auth_metrics_init(a.reg) != 0 || limits_metrics_init(a.reg) != 0 ||
        gate_metrics_init(a.reg) != 0 ||
        session_metrics_init(a.reg, &a.s) != 0 || recording_metrics_init(a.reg) != 0 ||
        recorder_metrics_init(a.reg) != 0 || reload_metrics_init(a.reg) != 0) {
        log_error("cannot register metrics");
        goto out;
    }

    /* Signals go to this thread only, through sigwait below. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A file size limit must make a write fail (EFBIG, handled), not kill
     * the server with every call on it. */
    signal(SIGXFSZ, SIG_IGN);
    raise_open_files(&a.s);

    if (defer_start() != 0) goto out;
    defer_up = 1;
    /* 4 workers always: the pipeline's own work (session strands, plugin
     * calls that return at once) never blocks and 4 keep 2 cores busy. The
     * pool grows only when queued work sees no task finish for
     * WORKERS_STALL_MS, which means calls that block: a provider start call that waits (hang = block, a network
     * plugin before its timeout), store get/put/del against a slow store
     * (session saves and resume lookups run on the workers; hiredis blocks
     * until its own timeout). The gate's timeout cancels such a call, but
     * one that ignores cancel holds its worker until it returns. 256 is the
     * most blocked calls we carry before new work queues behind them: far
     * above what a healthy server needs (the threads test and BENCHMARKS.md
     * show 4-6), and low enough that a store outage cannot run the process
     * out of threads (each has a reserved stack). Surplus workers exit
     * after WORKERS_IDLE_MS idle. Recording uploads have their own
     * [recording] workers and never block this pool; timers and plugin
     * deferred work run on the defer thread. */
    if (workers_start(4, 256) != 0) goto out;
    workers_up = 1;
    atomic_store(&a.phase, APP_STARTING);
    if (http_start(&a, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        goto out;
    }
    http_up = 1;
    if (ws_start(&a, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        goto out;
    }
    ws_up = 1;
    if (webrtc_start(&a, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        goto out;
    }
    {
        front_options fo = {
            .listen = a.s.listen,
            .head_timeout_ms = (unsigned)a.s.header_timeout_ms,
            .max_pending = (unsigned)a.s.max_pending,
            .max_pending_per_ip = (unsigned)a.s.max_pending_per_ip,
        };
        front_callbacks cb = {
            .user = &a,
            .http = http_add_connection,
            .upgrade = ws_upgrade,
            .dropped = http_front_dropped,
            .log = front_log,
            .exempt = front_exempt,
        };
        if (front_start(&fo, &cb, &fr, err, sizeof err) != 0) {
            log_fmt(VX_LOG_ERROR, "%s", err);
            goto out;
        }
    }
    if (plug_set_init(a.plugins, a.reg, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        goto out;
    }
    {
        /* The stage providers live in generations a reload replaces; the
         * store and the sink stay in a.plugins, which becomes the first
         * generation of the services (a reload replaces it too). */
        plug_set *stages = plug_set_take_stages(a.plugins);
        if (stages == NULL || stage_init(a.reg, &a.s, stages) != 0) {
            log_error("cannot register the pipeline metrics");
            plug_set_free(stages);
            goto out;
        }
        stage_up = 1;
        /* The store and the sink: generations a reload replaces too. */
        if (svc_init(a.plugins) != 0) {
            log_error("out of memory");
            goto out;
        }
        a.plugins = NULL;
        svc_up = 1;
    }
    if (recording_start(&a, err, sizeof err) != 0) {
        log_fmt(VX_LOG_ERROR, "%s", err);
        goto out;
    }
    rec_up = 1;
    if (health_start(&a) != 0) goto out;
    health_up = 1;
    atomic_store(&a.phase, APP_RUNNING);
    {
        char port[16];
        snprintf(port, sizeof port, "%d", front_port(fr));
        log_info("voxray started", "version", PACKAGE_VERSION, "listen", a.s.listen, "port", port,
                 "config", config_path, "store", a.s.store);
    }

    for (;;) {
        /* Wake now and then to free the plugin generations a reload
         * replaced once their last session ended (plugins are shut down
         * on this thread). */
        struct timespec tick = {0, 200 * 1000000L};
        int sig = sigtimedwait(&set, NULL, &tick);
        stage_collect();
        svc_collect();
        if (sig < 0) continue;
        if (sig == SIGHUP) {
            reload(&a, &c, config_path);
            continue;
        }
        log_info("shutting down", "signal", sig == SIGTERM ? "SIGTERM" : "SIGINT");
        break;
    }
    atomic_store(&a.phase, APP_DRAINING);
    if (fr) front_stop_listening(fr);
    if (drain(&a) != 0) log_warn("drain deadline reached with sessions still open; closing them");
    rc = 0;
out:
    if (fr) front_stop(fr);
    if (ws_up) ws_stop();
    webrtc_stop();
    /* The sessions just closed finish their recordings (on the workers),
     * then the upload queue gets shutdown_upload_timeout to empty. */
    if (rec_up && recording_stop(10000, a.s.rec_shutdown_timeout_ms) != 0) sink_stuck = 1;
    if (sink_stuck || (workers_up && workers_stop(5000) != 0)) {
        /* A plugin call never returned: unloading its code now would crash. */
        log_error("a plugin call is still running at shutdown; exiting without unloading plugins");
        fflush(stdout);
        _exit(rc);
    }
    /* Timers run now (releasing what they hold) while plugins are loaded. */
    if (defer_up) defer_stop();
    if (health_up) health_stop();
    if (http_up) http_stop();
    if (stage_up) stage_shutdown();
    if (svc_up) svc_shutdown();
    plug_set_free(a.plugins);
    acl_free(atomic_load(&a.metrics_acl));
    auth_free();
    limits_free();
    reload_metrics_free();
    metrics_registry_free(a.reg);
    settings_free(&a.s);
    settings_live_free();
    cfg_free(c);
    log_clear_secrets();
    if (rc == 0 && !check_only) log_info("voxray stopped");
    return rc;
}

int main(int argc, char **argv)
{
    enum { OPT_LIST = 256, OPT_HELP_PLUGIN, OPT_PLUGIN_DIR, OPT_REPLAY };
    static const struct option opts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, 't'},
        {"list-plugins", no_argument, NULL, OPT_LIST},
        {"plugin-help", required_argument, NULL, OPT_HELP_PLUGIN},
        {"plugin-dir", required_argument, NULL, OPT_PLUGIN_DIR},
        {"replay-recordings", no_argument, NULL, OPT_REPLAY},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *config_path = NULL, *help_name = NULL, *plugin_dir = NULL;
    int check = 0, list = 0, replay_rec = 0, opt;

    tune_allocator(); /* before the first thread */
    while ((opt = getopt_long(argc, argv, "c:tVh", opts, NULL)) != -1) {
        switch (opt) {
        case 'c': config_path = optarg; break;
        case 't': check = 1; break;
        case OPT_LIST: list = 1; break;
        case OPT_HELP_PLUGIN: help_name = optarg; break;
        case OPT_PLUGIN_DIR: plugin_dir = optarg; break;
        case OPT_REPLAY: replay_rec = 1; break;
        case 'V':
            printf("voxray %s (plugin ABI %d.%d)\n", PACKAGE_VERSION, VX_ABI_MAJOR, VX_ABI_MINOR);
            return 0;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "voxray: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (config_path == NULL) config_path = DEFAULT_CONFIG;

    /* VOXRAY_LOG_LEVEL applies even to errors about the configuration. */
    const char *env_level = getenv("VOXRAY_LOG_LEVEL");
    if (env_level && log_level_parse(env_level) >= 0) log_set_level(log_level_parse(env_level));

    if (list || help_name) {
        cfg_file *c = NULL;
        settings s;
        int rc;
        memset(&s, 0, sizeof s);
        if (plugin_dir == NULL) {
            if (load_config(config_path, &c, &s) != 0) return 1;
            plugin_dir = s.plugin_dir;
        }
        rc = list ? list_plugins(plugin_dir) : plugin_help(plugin_dir, help_name);
        settings_free(&s);
        cfg_free(c);
        return rc;
    }
    if (replay_rec) return replay(config_path);
    return run(config_path, check);
}
