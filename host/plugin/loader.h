/*
 * Plugin loader: finds NAME.so on the plugin path, dlopen()s it with
 * RTLD_NOW|RTLD_LOCAL, calls vx_plugin_entry and checks the descriptor before
 * the host trusts anything in it.
 *
 * Refused, with one line that names the file, the versions and the fix:
 *   - a file that is missing, not a shared object, or lacks vx_plugin_entry;
 *   - an entry that returns NULL;
 *   - a wrong magic;
 *   - a different ABI major, or a newer ABI minor than the host's;
 *   - a descriptor (or any vtable) smaller than ABI 1.0 defined it;
 *   - no kind, an unknown kind bit, a kind without its vtable, or a vtable
 *     missing a mandatory method (STT: open, feed, finish, cancel, close;
 *     LLM: generate, cancel, close; TTS: synthesize, cancel, close;
 *     store: get, put, del, ping; sink: upload);
 *   - no name, or a name different from the file's base name.
 * An entry that returns NULL is refused with the last warning or error it
 * logged through host->log(NULL, ...), if any (loader_entry_note).
 * Accepted: an older minor; the descriptor and vtables are copied into zeroed
 * host-sized structs so methods appended after the plugin's minor read NULL.
 */
#ifndef VOXRAY_LOADER_H
#define VOXRAY_LOADER_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <voxray/plugin.h>

typedef struct loader_plugin {
    char *path;          /* file it was loaded from (malloc'd) */
    void *handle;        /* dlopen handle */
    int fd;              /* descriptor it was loaded through (loader_open_fresh), else -1 */
    /* The file as it was when loaded, to tell a replaced file on SIGHUP. */
    dev_t dev;
    ino_t ino;
    off_t size;
    int64_t mtime_ns;
    atomic_int refs;     /* plugin sets holding it (plugins.c) */
    vx_plugin_info info; /* copy of the descriptor, zero-extended */
    /* Copies of the vtables, zero-extended; meaningful only for the kinds in
     * info.kinds. info.stt etc. point at these copies. */
    vx_stt_vtable stt;
    vx_llm_vtable llm;
    vx_tts_vtable tts;
    vx_store_vtable store;
    vx_sink_vtable sink;
} loader_plugin;

/* Look up "<name>.so" in each directory of the colon-separated `path` in
 * order and load the first that exists. On failure returns NULL and writes a
 * one-line reason (no trailing newline) into err. */
loader_plugin *loader_open(const char *path, const char *name,
                           const vx_host_api *api, char *err, size_t errlen);

/* Load one file by path. Same contract as loader_open(). */
loader_plugin *loader_open_file(const char *file, const vx_host_api *api,
                                char *err, size_t errlen);

/* Like loader_open(), but the file is dlopen()ed through a descriptor of
 * its own (/proc/self/fd/N, kept open until loader_close), so a file that
 * replaced one already loaded from the same path is loaded side by side
 * with it instead of dlopen() handing back the old handle. Without /proc
 * it falls back to the path. */
loader_plugin *loader_open_fresh(const char *path, const char *name,
                                 const vx_host_api *api, char *err, size_t errlen);

/* The file "<name>.so" would be loaded from now (first match on the
 * colon-separated path) into buf; 0, or -1 when there is none. */
int loader_find(const char *path, const char *name, char *buf, size_t len);

/* Has the file at `file` changed since p was loaded (another file, size or
 * modification time), or is it gone? */
int loader_file_changed(const loader_plugin *p, const char *file);

/* dlclose and free. The caller guarantees no instance of it is alive. */
void loader_close(loader_plugin *p);

/* Call cb once for every "*.so" file in every directory of `path` (sorted by
 * name within a directory), with the loaded plugin or NULL and the reason it
 * was refused. The plugin is closed after cb returns. Returns the number of
 * files seen, or -1 if no directory could be read (err says why). */
int loader_scan(const char *path, const vx_host_api *api,
                void (*cb)(void *user, const char *file,
                           const loader_plugin *p, const char *why),
                void *user, char *err, size_t errlen);

/* "stt,llm" style list of the kinds in a mask, into buf. Returns buf. */
const char *loader_kinds_str(unsigned kinds, char *buf, size_t len);

/* Also checked at load, so the rest of the host can rely on them: the config
 * schema (every key named once, a known type, enum keys with choices, known
 * flags). Kinds the plugin does not claim have their info.* vtable pointer
 * set to NULL; a NULL version or description reads as "". struct_size keeps
 * the plugin's value. */

/* Create one instance of p: calls info.init (if any) with a zeroed vx_error.
 * Returns VX_OK with *inst set (NULL when the plugin has no init), or the
 * plugin's negative VX_E* code (VX_EINTERNAL if it returned a positive value)
 * with *inst NULL and one line in err:
 *   plugin /x/foo.so (instance 'bar'): init failed: <msg> (<error name>) */
int loader_instance_init(const loader_plugin *p, const vx_host_api *api,
                         vx_host *h, const vx_config *cfg, void **inst,
                         char *err, size_t errlen);

/* Short lowercase name of a VX_E* code, used as the error_type metric label:
 * invalid nomem notsup timeout unavailable ratelimit auth canceled protocol
 * internal notfound; "unknown" for anything else (VX_OK included). */
const char *loader_error_name(int code);

/* The rule for a plugin metric name given to vx_host_api.metric_register
 * (documented there): the daemon and voxray-plugin-check both apply it.
 * type is a vx_metric_type. Returns 0, or -1 with one line in why. */
int loader_metric_name_check(int type, const char *name, char *why, size_t len);

/* Messages a plugin logs with a NULL handle (from vx_plugin_entry) while
 * the loader calls the entry on this thread: the host's log function hands
 * each one here, and a refusal of an entry that returned NULL quotes the
 * last warning or error ("... refused to load: <message>"). */
void loader_entry_note(int level, const char *msg);

#endif
