/*
 * Plugin instances: which plugin files to load for the configuration, the
 * validation of every [plugin.NAME] section against its plugin's schema, and
 * the life cycle (init in configuration order, shutdown in reverse).
 *
 * Names. The configuration names instances: [session] store = redis,
 * [stt] providers = a, b. An instance NAME is
 *   - the section [plugin.NAME] if there is one; its `plugin` key names the
 *     plugin file (default: NAME);
 *   - otherwise an instance with default settings of the plugin file
 *     "<kind>_NAME" (store_redis for store = redis) or else "NAME".
 * Every [plugin.NAME] section is loaded and validated even when no stage
 * uses it, so --check-config catches its mistakes too.
 */
#ifndef VOXRAY_PLUGINS_H
#define VOXRAY_PLUGINS_H

#include <stdatomic.h>
#include <stddef.h>
#include <voxray/plugin.h>

#include "base/cfg.h"
#include "plugin/loader.h"
#include "settings.h"

typedef struct metrics_registry metrics_registry;
typedef struct gate_instance gate_instance;

#define PLUG_MAX_PROVIDERS 16

typedef struct plug_instance {
    char *name;     /* instance name */
    char *module;   /* plugin file base name */
    const loader_plugin *lp;
    unsigned roles; /* vx_kind bits it is used as */
    vx_config cfg;  /* validated config handed to init */
    vx_kv *kv;
    size_t n_kv;
    void *inst;     /* what init returned */
    int initialized;
    vx_host *host;  /* handle handed to the plugin */
    gate_instance *gate; /* call metrics (gate.c) */
    atomic_int refs;     /* plugin sets holding it; shut down at 0 */
    char *section;       /* its [plugin.NAME] items ("key=value" lines, after the
                          * environment), to tell a changed section on SIGHUP */
    /* Last health check (health.c, under its lock). */
    int health_ok;
    char health_detail[256];
} plug_instance;

typedef struct plug_set {
    loader_plugin **files;
    size_t n_files;
    plug_instance **inst;
    size_t n_inst;
    plug_instance *store;
    plug_instance *sink;  /* [recording] sink when recording is enabled, else NULL */
    plug_instance *stage[STAGE_COUNT][PLUG_MAX_PROVIDERS];
    int n_stage[STAGE_COUNT];
    int retired; /* replaced by a reload: log what freeing it shuts down and unloads */
} plug_set;

/* Resolve, load and validate everything the configuration names. No init
 * is called. Returns 0, or -1 with one line in err. */
int plug_set_load(const settings *s, cfg_file *c, plug_set **out, char *err, size_t errlen);
/* Call init on every used instance in order (store first, then stt, llm,
 * tts). On failure returns -1 with the reason; instances already
 * initialised are shut down again. */
int plug_set_init(plug_set *ps, metrics_registry *reg, char *err, size_t errlen);
/* Same, only for the instances used in one of `roles` (vx_kind bits):
 * voxray --replay-recordings needs the sink alone. */
int plug_set_init_roles(plug_set *ps, metrics_registry *reg, unsigned roles, char *err, size_t errlen);
/* Drop the set's references: instances no other set holds are shut down
 * (reverse order) and files no set holds are unloaded. NULL is fine.
 * Call on the main thread (plugins are shut down on it). */
void plug_set_free(plug_set *ps);

/* Instances are shared between sets by reference: the stage providers run
 * in sets of their own (stage.c generations), which a reload replaces,
 * and the store and the sink in theirs (services.c generations), which a
 * reload replaces too.
 *
 * A new set with the stage provider instances of `base` (references
 * taken); base keeps only what the store and sink use (other instances and
 * files are released from it). base's stage lists are emptied. NULL on OOM. */
plug_set *plug_set_take_stages(plug_set *base);

/* SIGHUP: resolve and validate the stage providers of a reloaded
 * configuration into a new set (no store, no sink). An instance of `cur`
 * with the same name, plugin file (path, device, inode, size, mtime) and
 * section is shared, initialised already; any other is created, and a
 * plugin file that changed is loaded again side by side with the old one
 * (loader_open_fresh). New instances are initialised by plug_set_init,
 * which skips shared ones. Returns 0, or -1 with one line in err. */
int plug_set_load_stages(const settings *s, cfg_file *c, const plug_set *cur, plug_set **out,
                         char *err, size_t errlen);

/* SIGHUP: the same for the session store and, with with_sink, the
 * recording sink ([session] store, [recording] sink): a set holding those
 * two, sharing the instances of `cur` (the set in service) that did not
 * change. Returns 0, or -1 with one line in err. */
int plug_set_load_services(const settings *s, cfg_file *c, const plug_set *cur, int with_sink, plug_set **out,
                           char *err, size_t errlen);

/* The host API table handed to every plugin. */
const vx_host_api *plug_host_api(void);

/* Short kind name of a single vx_kind bit: "stt", "llm", "tts", "store",
 * "sink". */
const char *plug_kind_name(unsigned kind);

#endif
