/*
 * Plugin instances and the host API table handed to plugins.
 */
#include "config.h"

#include "plugin/plugins.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/defer.h"
#include "plugin/gate.h"
#include "base/log.h"
#include "metrics.h"

/* ------------------------------------------------------------ host handle */

typedef struct plug_metric plug_metric;

struct vx_host {
    plug_instance *pi;
    char prefix[160]; /* "[store:redis] " */
    metrics_registry *reg;
    pthread_mutex_t lock;
    plug_metric *metrics;
};

struct plug_metric {
    vx_metric_type type;
    metrics_series *series;
    plug_metric *next;
};

const char *plug_kind_name(unsigned kind)
{
    switch (kind) {
    case VX_KIND_STT: return "stt";
    case VX_KIND_LLM: return "llm";
    case VX_KIND_TTS: return "tts";
    case VX_KIND_STORE: return "store";
    case VX_KIND_SINK: return "sink";
    default: return "plugin";
    }
}

static void host_vlog(vx_host *h, int level, const char *fmt, va_list ap)
{
    int enabled = log_enabled(level);
    /* Without a handle the message may be the reason an entry refuses. */
    if (!enabled && h != NULL) return;
    char msg[2048];
    vsnprintf(msg, sizeof msg, fmt, ap);
    /* Plugins often end lines with '\n'; the logger adds its own. */
    size_t l = strlen(msg);
    while (l > 0 && (msg[l - 1] == '\n' || msg[l - 1] == '\r')) msg[--l] = '\0';
    if (h == NULL) loader_entry_note(level, msg);
    if (enabled) log_fmt(level, "%s%s", h ? h->prefix : "[plugin] ", msg);
}

static void host_log(vx_host *h, int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    host_vlog(h, level, fmt, ap);
    va_end(ap);
}

static int host_log_enabled(vx_host *h, int level)
{
    (void)h;
    return log_enabled(level);
}

static uint64_t host_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void *host_alloc(size_t n) { return malloc(n ? n : 1); }
static void host_free(void *p) { free(p); }

static int host_defer(vx_host *h, uint32_t delay_ms, void (*fn)(void *), void *arg)
{
    (void)h;
    if (fn == NULL) return VX_EINVAL;
    return defer_run(delay_ms, fn, arg) == 0 ? VX_OK : VX_EUNAVAIL;
}

static int host_defer_id(vx_host *h, uint32_t delay_ms, void (*fn)(void *), void *arg, uint64_t *id)
{
    (void)h;
    if (fn == NULL || id == NULL) return VX_EINVAL;
    return defer_run_id(delay_ms, fn, arg, id) == 0 ? VX_OK : VX_EUNAVAIL;
}

static int host_defer_at(vx_host *h, uint64_t due_ns, void (*fn)(void *), void *arg, uint64_t *id)
{
    (void)h;
    if (fn == NULL || id == NULL) return VX_EINVAL;
    return defer_run_at(due_ns, fn, arg, id) == 0 ? VX_OK : VX_EUNAVAIL;
}

static int host_defer_cancel(vx_host *h, uint64_t id, int wait)
{
    (void)h;
    return wait ? defer_cancel_wait(id) : defer_cancel(id);
}

static const char *host_config_get(vx_host *h, const char *key)
{
    if (h == NULL || key == NULL) return NULL;
    const plug_instance *pi = h->pi;
    for (size_t i = 0; i < pi->n_kv; i++)
        if (strcmp(pi->kv[i].key, key) == 0) return pi->kv[i].value;
    return NULL;
}

/* 1.6 typed getters: the instance's validated values, parsed. */
static int host_config_typed(vx_host *h, const char *key, cfg_get_type type, void *out)
{
    if (h == NULL) return VX_EINVAL;
    return cfg_kv_get(h->pi->kv, h->pi->n_kv, key, type, out);
}

static int host_config_int(vx_host *h, const char *key, int64_t *out)
{
    return host_config_typed(h, key, CFG_GET_INT, out);
}

static int host_config_float(vx_host *h, const char *key, double *out)
{
    return host_config_typed(h, key, CFG_GET_FLOAT, out);
}

static int host_config_bool(vx_host *h, const char *key, int *out)
{
    return host_config_typed(h, key, CFG_GET_BOOL, out);
}

static int host_config_duration_ms(vx_host *h, const char *key, int64_t *out)
{
    return host_config_typed(h, key, CFG_GET_DURATION_MS, out);
}

static int host_config_duration_ns(vx_host *h, const char *key, int64_t *out)
{
    return host_config_typed(h, key, CFG_GET_DURATION_NS, out);
}

static int host_config_size(vx_host *h, const char *key, uint64_t *out)
{
    return host_config_typed(h, key, CFG_GET_SIZE, out);
}

static vx_metric *host_metric_register(vx_host *h, vx_metric_type type,
                                       const char *name, const char *help)
{
    static const char *const labels[] = {"plugin", "provider"};
    char full[160], why[256];
    metrics_family *f = NULL;
    if (h == NULL || h->reg == NULL) return NULL;
    if (loader_metric_name_check((int)type, name, why, sizeof why) != 0) {
        host_log(h, VX_LOG_WARN, "metric refused: %s", why);
        return NULL;
    }
    snprintf(full, sizeof full, "voxray_plugin_%s", name);
    if (help == NULL) help = name;
    switch (type) {
    case VX_METRIC_COUNTER: f = metrics_counter_family(h->reg, full, help, 2, labels); break;
    case VX_METRIC_GAUGE: f = metrics_gauge_family(h->reg, full, help, 2, labels); break;
    case VX_METRIC_HISTOGRAM: f = metrics_histogram_family(h->reg, full, help, 2, labels, NULL, 0); break;
    default: return NULL;
    }
    if (f == NULL) {
        host_log(h, VX_LOG_WARN, "metric refused: %s is already registered as another "
                 "type or with other labels", full);
        return NULL;
    }
    const char *values[] = {h->pi->name, h->pi->name};
    plug_metric *m = calloc(1, sizeof *m);
    if (m == NULL) return NULL;
    m->type = type;
    m->series = metrics_series_get(f, values);
    if (m->series == NULL) {
        free(m);
        return NULL;
    }
    pthread_mutex_lock(&h->lock);
    m->next = h->metrics;
    h->metrics = m;
    pthread_mutex_unlock(&h->lock);
    return (vx_metric *)m;
}

static void host_metric_add(vx_metric *vm, double v)
{
    plug_metric *m = (plug_metric *)vm;
    if (m == NULL || !isfinite(v)) return;
    if (m->type == VX_METRIC_COUNTER) {
        if (v > 0) metrics_counter_add(m->series, (uint64_t)llround(v));
    } else if (m->type == VX_METRIC_GAUGE) {
        metrics_gauge_add(m->series, v);
    }
}

static void host_metric_set(vx_metric *vm, double v)
{
    plug_metric *m = (plug_metric *)vm;
    if (m && m->type == VX_METRIC_GAUGE) metrics_gauge_set(m->series, v);
}

static void host_metric_observe(vx_metric *vm, double v)
{
    plug_metric *m = (plug_metric *)vm;
    if (m && m->type == VX_METRIC_HISTOGRAM && isfinite(v)) metrics_histogram_observe(m->series, v);
}

static const vx_host_api g_api = {
    .struct_size = sizeof(vx_host_api),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .log = host_log,
    .vlog = host_vlog,
    .log_enabled = host_log_enabled,
    .now_ns = host_now_ns,
    .alloc = host_alloc,
    .free = host_free,
    .defer = host_defer,
    .config_get = host_config_get,
    .metric_register = host_metric_register,
    .metric_add = host_metric_add,
    .metric_set = host_metric_set,
    .metric_observe = host_metric_observe,
    .defer_id = host_defer_id,
    .defer_cancel = host_defer_cancel,
    .defer_at = host_defer_at,
    .config_int = host_config_int,
    .config_float = host_config_float,
    .config_bool = host_config_bool,
    .config_duration_ms = host_config_duration_ms,
    .config_duration_ns = host_config_duration_ns,
    .config_size = host_config_size,
};

const vx_host_api *plug_host_api(void) { return &g_api; }

static void host_handle_free(vx_host *h)
{
    if (h == NULL) return;
    plug_metric *m = h->metrics;
    while (m) {
        plug_metric *next = m->next;
        metrics_series_release(m->series);
        free(m);
        m = next;
    }
    pthread_mutex_destroy(&h->lock);
    free(h);
}

/* ------------------------------------------------------------ instances */

static void instance_free(plug_instance *pi)
{
    if (pi == NULL) return;
    for (size_t i = 0; i < pi->n_kv; i++) {
        free((char *)pi->kv[i].key);
        free((char *)pi->kv[i].value);
    }
    free(pi->kv);
    gate_instance_free(pi->gate);
    host_handle_free(pi->host);
    free(pi->name);
    free(pi->module);
    free(pi->section);
    free(pi);
}

/* The items of section `sec` as "key=value" lines ("plugin" included). */
static char *section_text(const cfg_file *c, const char *sec)
{
    size_t len = 1;
    for (size_t i = 0; i < c->n; i++)
        if (strcmp(c->items[i].section, sec) == 0) len += strlen(c->items[i].key) + strlen(c->items[i].value) + 2;
    char *t = calloc(1, len);
    if (t == NULL) return NULL;
    char *w = t;
    for (size_t i = 0; i < c->n; i++) {
        const cfg_item *it = &c->items[i];
        if (strcmp(it->section, sec) != 0) continue;
        w += sprintf(w, "%s=%s\n", it->key, it->value);
    }
    return t;
}

/* Add a reference to p in ps->files unless it is there already. */
static int hold_file(plug_set *ps, loader_plugin *lp)
{
    for (size_t i = 0; i < ps->n_files; i++)
        if (ps->files[i] == lp) return 0;
    loader_plugin **nf = realloc(ps->files, (ps->n_files + 1) * sizeof *nf);
    if (nf == NULL) return -1;
    ps->files = nf;
    ps->files[ps->n_files++] = lp;
    atomic_fetch_add(&lp->refs, 1);
    return 0;
}

static int hold_instance(plug_set *ps, plug_instance *pi)
{
    plug_instance **ni = realloc(ps->inst, (ps->n_inst + 1) * sizeof *ni);
    if (ni == NULL) return -1;
    ps->inst = ni;
    ps->inst[ps->n_inst++] = pi;
    atomic_fetch_add(&pi->refs, 1);
    return 0;
}

static plug_instance *find_instance(plug_set *ps, const char *name)
{
    for (size_t i = 0; i < ps->n_inst; i++)
        if (strcmp(ps->inst[i]->name, name) == 0) return ps->inst[i];
    return NULL;
}

/* Load (once) the plugin file `module`. */
static const loader_plugin *load_file(plug_set *ps, const plug_set *prev, const settings *s,
                                      const char *module, char *err, size_t errlen)
{
    for (size_t i = 0; i < ps->n_files; i++)
        if (strcmp(ps->files[i]->info.name, module) == 0) return ps->files[i];
    if (prev) {
        /* A reload: the running file is shared unless it was replaced. */
        char file[4096 + 256];
        for (size_t i = 0; i < prev->n_files; i++) {
            loader_plugin *old = prev->files[i];
            if (strcmp(old->info.name, module) != 0) continue;
            if (loader_find(s->plugin_dir, module, file, sizeof file) == 0 && !loader_file_changed(old, file)) {
                if (hold_file(ps, old) != 0) break;
                return old;
            }
        }
    }
    loader_plugin *lp = prev ? loader_open_fresh(s->plugin_dir, module, &g_api, err, errlen)
                             : loader_open(s->plugin_dir, module, &g_api, err, errlen);
    if (lp == NULL) return NULL;
    atomic_store(&lp->refs, 1);
    loader_plugin **nf = realloc(ps->files, (ps->n_files + 1) * sizeof *nf);
    if (nf == NULL) {
        loader_close(lp);
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    ps->files = nf;
    ps->files[ps->n_files++] = lp;
    return lp;
}

static int file_exists_on_path(const char *path, const char *module)
{
    const char *p = path;
    char buf[4096];
    for (;;) {
        const char *colon = strchr(p, ':');
        size_t l = colon ? (size_t)(colon - p) : strlen(p);
        if (l > 0 && l + strlen(module) + 5 < sizeof buf) {
            snprintf(buf, sizeof buf, "%.*s/%s.so", (int)l, p, module);
            FILE *f = fopen(buf, "r");
            if (f) {
                fclose(f);
                return 1;
            }
        }
        if (colon == NULL) return 0;
        p = colon + 1;
    }
}

/* Validate the instance's section against the plugin schema and build the
 * vx_config handed to init: every schema key with its value or default. */
static int build_config(plug_instance *pi, cfg_file *c, char *err, size_t errlen)
{
    char section[160], where[512], why[256];
    const vx_config_key *schema = pi->lp->info.config;
    size_t n = 0;
    snprintf(section, sizeof section, "plugin.%s", pi->name);

    if (schema)
        for (; schema[n].key; n++) {
            if (cfg_apply_env(c, section, schema[n].key) < 0) goto oom;
        }
    for (size_t i = 0; i < c->n; i++) {
        cfg_item *it = &c->items[i];
        if (strcmp(it->section, section) != 0 || strcmp(it->key, "plugin") == 0) continue;
        const vx_config_key *k = NULL;
        for (size_t j = 0; j < n; j++)
            if (strcmp(schema[j].key, it->key) == 0) k = &schema[j];
        if (k == NULL) {
            char keys[1024];
            size_t off = 0;
            keys[0] = '\0';
            for (size_t j = 0; j < n && off < sizeof keys; j++) {
                int w = snprintf(keys + off, sizeof keys - off, "%s%s", j ? ", " : "", schema[j].key);
                if (w < 0) break;
                off += (size_t)w;
            }
            snprintf(err, errlen, "%s: unknown key '%s' for plugin %s (allowed: plugin%s%s)",
                     cfg_where(c, it, where, sizeof where), it->key, pi->module,
                     n ? ", " : "", keys);
            return -1;
        }
        if (cfg_check_value(k, it->value, why, sizeof why) != 0) {
            snprintf(err, errlen, "%s = \"%s\": %s", cfg_where(c, it, where, sizeof where),
                     (k->flags & VX_CFG_SECRET) ? "***" : it->value, why);
            return -1;
        }
        it->used = 1;
        if (k->flags & VX_CFG_SECRET) log_add_secret(it->value);
    }

    pi->kv = calloc(n ? n : 1, sizeof *pi->kv);
    if (pi->kv == NULL) goto oom;
    for (size_t j = 0; j < n; j++) {
        cfg_item *it = cfg_find(c, section, schema[j].key);
        const char *v = it ? it->value : schema[j].def;
        if ((schema[j].flags & VX_CFG_REQUIRED) && (v == NULL || *v == '\0')) {
            snprintf(err, errlen, "[%s]: plugin %s requires key '%s' (%s); set it in the file or as %s",
                     section, pi->module, schema[j].key, schema[j].help ? schema[j].help : "",
                     (cfg_env_name(section, schema[j].key, where, sizeof where), where));
            return -1;
        }
        pi->kv[j].key = strdup(schema[j].key);
        pi->kv[j].value = v ? strdup(v) : NULL;
        pi->n_kv = j + 1;
        if (pi->kv[j].key == NULL || (v && pi->kv[j].value == NULL)) goto oom;
    }
    pi->cfg.struct_size = sizeof pi->cfg;
    pi->cfg.instance = pi->name;
    pi->cfg.items = pi->kv;
    pi->cfg.n_items = pi->n_kv;
    return 0;
oom:
    snprintf(err, errlen, "out of memory");
    return -1;
}

/* Create the instance `name` (used as `role`, or 0 for a declared but unused
 * section). */
static plug_instance *get_instance(plug_set *ps, const plug_set *prev, const settings *s, cfg_file *c,
                                   const char *name, unsigned role, char *err, size_t errlen)
{
    char section[160];
    plug_instance *pi = find_instance(ps, name);
    if (pi) goto check_role;

    snprintf(section, sizeof section, "plugin.%s", name);
    if (cfg_apply_env(c, section, "plugin") < 0) goto oom;
    cfg_item *mod = cfg_find(c, section, "plugin");
    char module[160];
    if (mod) {
        snprintf(module, sizeof module, "%s", mod->value);
    } else if (role && !file_exists_on_path(s->plugin_dir, name)) {
        snprintf(module, sizeof module, "%s_%s", role == VX_KIND_SINK ? "rec" : plug_kind_name(role), name);
        if (!file_exists_on_path(s->plugin_dir, module)) {
            snprintf(err, errlen, "plugin for instance '%s' not found in %s (looked for %s.so, %s.so); check [server] plugin_dir",
                     name, s->plugin_dir, module, name);
            return NULL;
        }
    } else {
        /* "<kind>_NAME" first (store = redis -> store_redis), then NAME. */
        snprintf(module, sizeof module, "%s", name);
        unsigned kinds[] = {role, VX_KIND_STORE, VX_KIND_STT, VX_KIND_LLM, VX_KIND_TTS, VX_KIND_SINK};
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
            if (kinds[i] == 0) continue;
            char cand[160];
            snprintf(cand, sizeof cand, "%s_%s", kinds[i] == VX_KIND_SINK ? "rec" : plug_kind_name(kinds[i]), name);
            if (file_exists_on_path(s->plugin_dir, cand)) {
                snprintf(module, sizeof module, "%s", cand);
                break;
            }
        }
    }

    if (prev) {
        /* A reload: the running instance goes on if nothing about it
         * changed (its file, its module, its section). */
        plug_instance *old = find_instance((plug_set *)prev, name);
        char file[4096 + 256];
        if (old && old->initialized && strcmp(old->module, module) == 0 &&
            loader_find(s->plugin_dir, module, file, sizeof file) == 0 && !loader_file_changed(old->lp, file)) {
            const vx_config_key *k = old->lp->info.config;
            for (; k && k->key; k++)
                if (cfg_apply_env(c, section, k->key) < 0) goto oom;
            char *now = section_text(c, section);
            if (now == NULL) goto oom;
            int same = old->section && strcmp(now, old->section) == 0;
            free(now);
            if (same) {
                for (size_t i = 0; i < c->n; i++)
                    if (strcmp(c->items[i].section, section) == 0) c->items[i].used = 1;
                if (hold_file(ps, (loader_plugin *)old->lp) != 0 || hold_instance(ps, old) != 0) goto oom;
                pi = old;
                goto check_role;
            }
        }
    }
    const loader_plugin *lp = load_file(ps, prev, s, module, err, errlen);
    if (lp == NULL) return NULL;
    pi = calloc(1, sizeof *pi);
    if (pi == NULL) goto oom;
    atomic_init(&pi->refs, 1);
    pi->name = strdup(name);
    pi->module = strdup(module);
    pi->lp = lp;
    pi->host = calloc(1, sizeof *pi->host);
    if (!pi->name || !pi->module || !pi->host) {
        instance_free(pi);
        goto oom;
    }
    pthread_mutex_init(&pi->host->lock, NULL);
    pi->host->pi = pi;
    if (build_config(pi, c, err, errlen) != 0) {
        instance_free(pi);
        return NULL;
    }
    pi->section = section_text(c, section);
    if (pi->section == NULL) {
        instance_free(pi);
        goto oom;
    }
    plug_instance **ni = realloc(ps->inst, (ps->n_inst + 1) * sizeof *ni);
    if (ni == NULL) {
        instance_free(pi);
        goto oom;
    }
    ps->inst = ni;
    ps->inst[ps->n_inst++] = pi;

check_role:
    if (role && !(pi->lp->info.kinds & role)) {
        char kinds[64];
        snprintf(err, errlen, "instance '%s' (plugin %s, %s) is used as %s but offers only %s",
                 name, pi->module, pi->lp->path, plug_kind_name(role),
                 loader_kinds_str(pi->lp->info.kinds, kinds, sizeof kinds));
        return NULL;
    }
    pi->roles |= role;
    if (!pi->initialized && (pi->host->prefix[0] == '\0' || role)) {
        unsigned first = pi->roles ? pi->roles : pi->lp->info.kinds;
        unsigned bit = first & (~first + 1);
        snprintf(pi->host->prefix, sizeof pi->host->prefix, "[%s:%s] ", plug_kind_name(bit), pi->name);
    }
    return pi;
oom:
    snprintf(err, errlen, "out of memory");
    return NULL;
}

int plug_set_load(const settings *s, cfg_file *c, plug_set **out, char *err, size_t errlen)
{
    static const unsigned stage_kind[STAGE_COUNT] = {VX_KIND_STT, VX_KIND_LLM, VX_KIND_TTS};
    plug_set *ps = calloc(1, sizeof *ps);
    *out = NULL;
    if (ps == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ps->store = get_instance(ps, NULL, s, c, s->store, VX_KIND_STORE, err, errlen);
    if (ps->store == NULL) goto fail;
    for (int st = 0; st < STAGE_COUNT; st++) {
        char *names[PLUG_MAX_PROVIDERS];
        int n = settings_split_list(s->providers[st], names, PLUG_MAX_PROVIDERS);
        for (int i = 0; i < n; i++) {
            plug_instance *pi = NULL;
            for (int j = 0; j < i; j++)
                if (strcmp(names[j], names[i]) == 0) {
                    snprintf(err, errlen, "[%s] providers lists '%s' twice", stage_name(st), names[i]);
                    goto stage_fail;
                }
            pi = get_instance(ps, NULL, s, c, names[i], stage_kind[st], err, errlen);
            if (pi == NULL) goto stage_fail;
            ps->stage[st][ps->n_stage[st]++] = pi;
            continue;
        stage_fail:
            for (int j = 0; j < n; j++) free(names[j]);
            goto fail;
        }
        for (int j = 0; j < n; j++) free(names[j]);
    }
    if (s->rec_enabled) {
        ps->sink = get_instance(ps, NULL, s, c, s->rec_sink, VX_KIND_SINK, err, errlen);
        if (ps->sink == NULL) goto fail;
    }
    /* Declared sections nobody uses are still loaded and validated. */
    for (size_t i = 0; i < c->n_sections; i++) {
        const char *sec = c->sections[i].name;
        if (strncmp(sec, "plugin.", 7) != 0 || find_instance(ps, sec + 7)) continue;
        if (get_instance(ps, NULL, s, c, sec + 7, 0, err, errlen) == NULL) goto fail;
        log_warn("plugin instance configured but not used", "instance", sec + 7);
    }
    *out = ps;
    return 0;
fail:
    plug_set_free(ps);
    return -1;
}

int plug_set_init(plug_set *ps, metrics_registry *reg, char *err, size_t errlen)
{
    return plug_set_init_roles(ps, reg, ~0u, err, errlen);
}

int plug_set_init_roles(plug_set *ps, metrics_registry *reg, unsigned roles, char *err, size_t errlen)
{
    for (size_t i = 0; i < ps->n_inst; i++) {
        plug_instance *pi = ps->inst[i];
        if ((pi->roles & roles) == 0 || pi->initialized) continue;
        pi->host->reg = reg;
        pi->gate = gate_instance_new(reg, pi);
        if (pi->gate == NULL) {
            snprintf(err, errlen, "out of memory");
            return -1;
        }
        int rc = loader_instance_init(pi->lp, &g_api, pi->host, &pi->cfg, &pi->inst, err, errlen);
        if (rc != 0) return -1;
        pi->initialized = 1;
        log_info("plugin instance ready", "instance", pi->name, "plugin", pi->module,
                 "version", pi->lp->info.version ? pi->lp->info.version : "");
    }
    return 0;
}

static void instance_release(plug_instance *pi, int retired)
{
    if (atomic_fetch_sub(&pi->refs, 1) != 1) return;
    if (pi->initialized && pi->lp->info.shutdown) pi->lp->info.shutdown(pi->inst);
    if (retired && pi->initialized)
        log_info("plugin instance shut down: a reload replaced it and no session uses it any more", "instance", pi->name, "plugin", pi->module,
                 "version", pi->lp->info.version ? pi->lp->info.version : "");
    instance_free(pi);
}

static void file_release(loader_plugin *lp, int retired)
{
    if (atomic_fetch_sub(&lp->refs, 1) != 1) return;
    if (retired)
        log_info("plugin file unloaded", "plugin", lp->info.name, "file", lp->path,
                 "version", lp->info.version ? lp->info.version : "");
    loader_close(lp);
}

void plug_set_free(plug_set *ps)
{
    if (ps == NULL) return;
    for (size_t i = ps->n_inst; i-- > 0;) instance_release(ps->inst[i], ps->retired);
    free(ps->inst);
    for (size_t i = 0; i < ps->n_files; i++) file_release(ps->files[i], ps->retired);
    free(ps->files);
    free(ps);
}

plug_set *plug_set_take_stages(plug_set *base)
{
    plug_set *ps = calloc(1, sizeof *ps);
    if (ps == NULL) return NULL;
    for (int st = 0; st < STAGE_COUNT; st++)
        for (int i = 0; i < base->n_stage[st]; i++) {
            plug_instance *pi = base->stage[st][i];
            if (find_instance(ps, pi->name) == NULL &&
                (hold_instance(ps, pi) != 0 || hold_file(ps, (loader_plugin *)pi->lp) != 0)) {
                plug_set_free(ps);
                return NULL;
            }
            ps->stage[st][ps->n_stage[st]++] = pi;
        }
    /* base keeps the store and the sink (and their files). */
    size_t keep = 0;
    for (size_t i = 0; i < base->n_inst; i++) {
        plug_instance *pi = base->inst[i];
        if (pi == base->store || pi == base->sink) base->inst[keep++] = pi;
        else instance_release(pi, 0);
    }
    base->n_inst = keep;
    keep = 0;
    for (size_t i = 0; i < base->n_files; i++) {
        loader_plugin *lp = base->files[i];
        int used = 0;
        for (size_t j = 0; j < base->n_inst; j++)
            if (base->inst[j]->lp == lp) used = 1;
        if (used) base->files[keep++] = lp;
        else file_release(lp, 0);
    }
    base->n_files = keep;
    memset(base->stage, 0, sizeof base->stage);
    memset(base->n_stage, 0, sizeof base->n_stage);
    return ps;
}

int plug_set_load_stages(const settings *s, cfg_file *c, const plug_set *cur, plug_set **out,
                         char *err, size_t errlen)
{
    static const unsigned stage_kind[STAGE_COUNT] = {VX_KIND_STT, VX_KIND_LLM, VX_KIND_TTS};
    plug_set *ps = calloc(1, sizeof *ps);
    *out = NULL;
    if (ps == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (int st = 0; st < STAGE_COUNT; st++) {
        char *names[PLUG_MAX_PROVIDERS];
        int n = settings_split_list(s->providers[st], names, PLUG_MAX_PROVIDERS);
        int bad = 0;
        for (int i = 0; i < n && !bad; i++) {
            for (int j = 0; j < i; j++)
                if (strcmp(names[j], names[i]) == 0) {
                    snprintf(err, errlen, "[%s] providers lists '%s' twice", stage_name(st), names[i]);
                    bad = 1;
                }
            plug_instance *pi = bad ? NULL : get_instance(ps, cur, s, c, names[i], stage_kind[st], err, errlen);
            if (pi == NULL) bad = 1;
            else ps->stage[st][ps->n_stage[st]++] = pi;
        }
        for (int j = 0; j < n; j++) free(names[j]);
        if (bad) {
            plug_set_free(ps);
            return -1;
        }
    }
    *out = ps;
    return 0;
}

int plug_set_load_services(const settings *s, cfg_file *c, const plug_set *cur, int with_sink, plug_set **out,
                           char *err, size_t errlen)
{
    plug_set *ps = calloc(1, sizeof *ps);
    *out = NULL;
    if (ps == NULL) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    ps->store = get_instance(ps, cur, s, c, s->store, VX_KIND_STORE, err, errlen);
    if (ps->store == NULL) goto fail;
    if (with_sink) {
        ps->sink = get_instance(ps, cur, s, c, s->rec_sink, VX_KIND_SINK, err, errlen);
        if (ps->sink == NULL) goto fail;
    }
    *out = ps;
    return 0;
fail:
    plug_set_free(ps);
    return -1;
}
