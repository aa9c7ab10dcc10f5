/*
 * Plugin loader (see loader.h for the list of refusals).
 *
 * Nothing a plugin hands back is trusted before it is checked. The descriptor
 * is read only as far as its struct_size says: first magic and struct_size,
 * then the version, and only then is min(struct_size, sizeof) of it copied
 * into a zeroed host-sized struct. Every vtable gets the same treatment. From
 * then on the host reads the copies only, so a method appended after the
 * plugin's minor reads NULL instead of whatever follows the plugin's struct.
 *
 * Every refusal is one line that names the file, what was found, what was
 * expected and what to do about it, because the operator who reads it usually
 * did not build the plugin.
 */
#include "config.h"

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "plugin/loader.h"

/* Bytes up to and including `field`: the size a struct had when `field` was
 * its last member. */
#define LD_END_OF(type, field) (offsetof(type, field) + sizeof(((type *)0)->field))

/* A schema with more keys than this is taken to lack its NULL terminator. */
#define LD_MAX_CONFIG_KEYS 256

typedef void (*ld_fn)(void);

typedef struct ld_method {
    const char *name;
    size_t off; /* offset of the function pointer in the vtable */
} ld_method;

/* What the loader knows about one kind: where its vtable pointer sits in the
 * descriptor, where the host copy lives in loader_plugin, how big the vtable
 * was in ABI 1.0 and which of its methods a plugin must implement. */
typedef struct ld_kind {
    unsigned bit;
    const char *name;
    size_t info_off; /* offset of the vtable pointer in vx_plugin_info */
    size_t copy_off; /* offset of the host copy in loader_plugin */
    size_t host_size; /* sizeof the vtable in this host */
    size_t size_1_0;  /* its size in ABI 1.0: the smallest accepted */
    ld_method methods[6]; /* mandatory methods, ended by a NULL name */
} ld_kind;

#define LD_M(type, f) { #f, offsetof(type, f) }

static const ld_kind ld_kinds[] = {
    { VX_KIND_STT, "stt", offsetof(vx_plugin_info, stt), offsetof(loader_plugin, stt),
      sizeof(vx_stt_vtable), LD_END_OF(vx_stt_vtable, input_format),
      { LD_M(vx_stt_vtable, open), LD_M(vx_stt_vtable, feed), LD_M(vx_stt_vtable, finish),
        LD_M(vx_stt_vtable, cancel), LD_M(vx_stt_vtable, close), { NULL, 0 } } },
    { VX_KIND_LLM, "llm", offsetof(vx_plugin_info, llm), offsetof(loader_plugin, llm),
      sizeof(vx_llm_vtable), LD_END_OF(vx_llm_vtable, close),
      { LD_M(vx_llm_vtable, generate), LD_M(vx_llm_vtable, cancel),
        LD_M(vx_llm_vtable, close), { NULL, 0 } } },
    { VX_KIND_TTS, "tts", offsetof(vx_plugin_info, tts), offsetof(loader_plugin, tts),
      sizeof(vx_tts_vtable), LD_END_OF(vx_tts_vtable, close),
      { LD_M(vx_tts_vtable, synthesize), LD_M(vx_tts_vtable, cancel),
        LD_M(vx_tts_vtable, close), { NULL, 0 } } },
    { VX_KIND_STORE, "store", offsetof(vx_plugin_info, store), offsetof(loader_plugin, store),
      sizeof(vx_store_vtable), LD_END_OF(vx_store_vtable, ping),
      { LD_M(vx_store_vtable, get), LD_M(vx_store_vtable, put), LD_M(vx_store_vtable, del),
        LD_M(vx_store_vtable, ping), { NULL, 0 } } },
    { VX_KIND_SINK, "sink", offsetof(vx_plugin_info, sink), offsetof(loader_plugin, sink),
      sizeof(vx_sink_vtable), LD_END_OF(vx_sink_vtable, upload),
      { LD_M(vx_sink_vtable, upload), { NULL, 0 } } },
};

#define LD_NKINDS (sizeof(ld_kinds) / sizeof(ld_kinds[0]))
#define LD_ALL_KINDS \
    (VX_KIND_STT | VX_KIND_LLM | VX_KIND_TTS | VX_KIND_STORE | VX_KIND_SINK)

/* What the plugin logged with a NULL handle during its entry call on this
 * thread (see loader_entry_note). */
static _Thread_local int ld_entry_capturing;
static _Thread_local char ld_entry_msg[200];

void loader_entry_note(int level, const char *msg) {
    if (!ld_entry_capturing || level < VX_LOG_WARN || msg == NULL) return;
    snprintf(ld_entry_msg, sizeof ld_entry_msg, "%s", msg);
}

/* Format a refusal into err and make sure it stays one line: file names,
 * dlerror() text and plugin strings may all hold control characters. */
static void ld_err(char *err, size_t errlen, const char *fmt, ...) VX_PRINTF(3, 4);
static void ld_err(char *err, size_t errlen, const char *fmt, ...) {
    va_list ap;
    char *c;

    if (err == NULL || errlen == 0) return;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
    for (c = err; *c; c++)
        if ((unsigned char)*c < 0x20 || *c == 0x7f) *c = ' ';
}

/* The file's base name without a trailing ".so", into buf. */
static void ld_basename(const char *file, char *buf, size_t len) {
    const char *b = strrchr(file, '/');
    size_t n;

    b = b ? b + 1 : file;
    n = strlen(b);
    if (n > 3 && strcmp(b + n - 3, ".so") == 0) n -= 3;
    if (n >= len) n = len - 1;
    memcpy(buf, b, n);
    buf[n] = '\0';
}

/* Check one key of the config schema. Returns 0 or -1 with err set. */
static int ld_check_key(const char *file, const vx_config_key *k, size_t i,
                        char *err, size_t errlen) {
    if (k->key[0] == '\0') {
        ld_err(err, errlen, "plugin %s: config key #%zu has an empty name; "
               "give it a name or end the schema with a NULL key", file, i);
        return -1;
    }
    if (k->type < VX_CFG_STRING || k->type > VX_CFG_SIZE) {
        ld_err(err, errlen, "plugin %s: config key '%.64s' has unknown type %d; "
               "use one of the VX_CFG_* types", file, k->key, (int)k->type);
        return -1;
    }
    if (k->type == VX_CFG_ENUM && (k->choices == NULL || k->choices[0] == '\0')) {
        ld_err(err, errlen, "plugin %s: config key '%.64s' is an enum without "
               "choices; set choices to \"a|b|c\"", file, k->key);
        return -1;
    }
    if (k->flags & ~(unsigned)(VX_CFG_REQUIRED | VX_CFG_SECRET)) {
        ld_err(err, errlen, "plugin %s: config key '%.64s' has unknown flags 0x%x; "
               "use VX_CFG_REQUIRED and VX_CFG_SECRET only", file, k->key,
               k->flags & ~(unsigned)(VX_CFG_REQUIRED | VX_CFG_SECRET));
        return -1;
    }
    return 0;
}

/* Check the config schema: every key well-formed and named once. A schema
 * without its NULL terminator cannot be detected reliably; the key limit only
 * stops the host from walking far past it. Returns 0 or -1 with err set. */
static int ld_check_schema(const char *file, const vx_config_key *cfg,
                           char *err, size_t errlen) {
    size_t i, j;

    if (cfg == NULL) return 0;
    for (i = 0; cfg[i].key != NULL; i++) {
        if (i == LD_MAX_CONFIG_KEYS) {
            ld_err(err, errlen, "plugin %s: config schema has more than %d keys or "
                   "no terminating entry; end it with { NULL }", file,
                   LD_MAX_CONFIG_KEYS);
            return -1;
        }
        if (ld_check_key(file, &cfg[i], i, err, errlen) < 0) return -1;
        for (j = 0; j < i; j++) {
            if (strcmp(cfg[j].key, cfg[i].key) == 0) {
                ld_err(err, errlen, "plugin %s: config key '%.64s' is declared "
                       "twice; remove one", file, cfg[i].key);
                return -1;
            }
        }
    }
    return 0;
}

/* Copy the vtable of kind k into p and check it. Returns 0 or -1 with err
 * set. */
static int ld_copy_vtable(loader_plugin *p, const ld_kind *k, char *err,
                          size_t errlen) {
    const void *src;
    char *dst = (char *)p + k->copy_off;
    uint32_t size;
    const ld_method *m;

    memcpy(&src, (const char *)&p->info + k->info_off, sizeof(src));
    if (src == NULL) {
        ld_err(err, errlen, "plugin %s: claims kind %s but its %s vtable is NULL; "
               "set it or drop the kind", p->path, k->name, k->name);
        return -1;
    }
    memcpy(&size, src, sizeof(size));
    if (size < k->size_1_0) {
        ld_err(err, errlen, "plugin %s: %s vtable is %u bytes, ABI 1.0 needs at "
               "least %zu; set struct_size = sizeof(vx_%s_vtable) and rebuild it "
               "against voxray-plugin %d.x", p->path, k->name, (unsigned)size,
               k->size_1_0, k->name, VX_ABI_MAJOR);
        return -1;
    }
    memcpy(dst, src, size < k->host_size ? size : k->host_size);
    for (m = k->methods; m->name; m++) {
        ld_fn fn;

        memcpy(&fn, dst + m->off, sizeof(fn));
        if (fn == NULL) {
            ld_err(err, errlen, "plugin %s: %s vtable lacks mandatory method "
                   "'%s'; implement it", p->path, k->name, m->name);
            return -1;
        }
    }
    /* From here on the host reads the copy. */
    memcpy((char *)&p->info + k->info_off, &dst, sizeof(dst));
    return 0;
}

/* Check the descriptor d returned by the entry of p->path and copy it into p.
 * Returns 0 or -1 with err set. */
static int ld_check(loader_plugin *p, const vx_plugin_info *d, char *err,
                    size_t errlen) {
    const char *file = p->path;
    uint32_t magic, size;
    uint16_t major, minor;
    char base[256];
    size_t i;

    /* magic and struct_size are the only fields every descriptor has. */
    memcpy(&magic, (const char *)d + offsetof(vx_plugin_info, magic), sizeof(magic));
    memcpy(&size, (const char *)d + offsetof(vx_plugin_info, struct_size), sizeof(size));
    if (magic != VX_PLUGIN_MAGIC) {
        ld_err(err, errlen, "plugin %s: not a voxray plugin (bad magic 0x%08x, "
               "expected 0x%08x)", file, (unsigned)magic, (unsigned)VX_PLUGIN_MAGIC);
        return -1;
    }
    if (size < LD_END_OF(vx_plugin_info, abi_minor)) goto too_small;
    memcpy(&major, (const char *)d + offsetof(vx_plugin_info, abi_major), sizeof(major));
    memcpy(&minor, (const char *)d + offsetof(vx_plugin_info, abi_minor), sizeof(minor));
    if (major != VX_ABI_MAJOR) {
        ld_err(err, errlen, "plugin %s: built for plugin ABI %u.%u, this voxray "
               "speaks %d.%d; rebuild it against voxray-plugin %d.x", file,
               (unsigned)major, (unsigned)minor, VX_ABI_MAJOR, VX_ABI_MINOR,
               VX_ABI_MAJOR);
        return -1;
    }
    if (minor > VX_ABI_MINOR) {
        ld_err(err, errlen, "plugin %s: built for plugin ABI %u.%u, newer than "
               "this voxray's %d.%d; upgrade voxray or rebuild the plugin against "
               "voxray-plugin %d.%d", file, (unsigned)major, (unsigned)minor,
               VX_ABI_MAJOR, VX_ABI_MINOR, VX_ABI_MAJOR, VX_ABI_MINOR);
        return -1;
    }
    if (size < VX_PLUGIN_INFO_SIZE_1_0) goto too_small;

    memcpy(&p->info, d, size < sizeof(p->info) ? size : sizeof(p->info));

    ld_basename(file, base, sizeof(base));
    if (p->info.name == NULL) {
        ld_err(err, errlen, "plugin %s: descriptor has no name; set it to \"%s\"",
               file, base);
        return -1;
    }
    if (strcmp(p->info.name, base) != 0) {
        ld_err(err, errlen, "plugin %s: descriptor is named '%.64s' but the file "
               "is %s.so; the name must be the file's base name: rename one",
               file, p->info.name, base);
        return -1;
    }
    if (p->info.kinds == 0) {
        ld_err(err, errlen, "plugin %s: descriptor claims no kind; set kinds to "
               "at least one VX_KIND_* bit", file);
        return -1;
    }
    if (p->info.kinds & ~(uint32_t)LD_ALL_KINDS) {
        ld_err(err, errlen, "plugin %s: descriptor claims unknown kind bits 0x%x "
               "(ABI %d.%d knows 0x%x: stt,llm,tts,store,sink); use VX_KIND_* only",
               file, (unsigned)(p->info.kinds & ~(uint32_t)LD_ALL_KINDS),
               VX_ABI_MAJOR, VX_ABI_MINOR, (unsigned)LD_ALL_KINDS);
        return -1;
    }
    for (i = 0; i < LD_NKINDS; i++) {
        const ld_kind *k = &ld_kinds[i];

        if (p->info.kinds & k->bit) {
            if (ld_copy_vtable(p, k, err, errlen) < 0) return -1;
        } else {
            /* A vtable for a kind it does not claim is ignored, never called. */
            memset((char *)&p->info + k->info_off, 0, sizeof(void *));
        }
    }
    if (ld_check_schema(file, p->info.config, err, errlen) < 0) return -1;
    if (p->info.version == NULL) p->info.version = "";
    if (p->info.description == NULL) p->info.description = "";
    return 0;

too_small:
    ld_err(err, errlen, "plugin %s: descriptor is %u bytes, ABI %d.0 needs at "
           "least %zu; rebuild it against voxray-plugin %d.x", file,
           (unsigned)size, VX_ABI_MAJOR, (size_t)VX_PLUGIN_INFO_SIZE_1_0,
           VX_ABI_MAJOR);
    return -1;
}

static void ld_identity(loader_plugin *p, const struct stat *st) {
    p->dev = st->st_dev;
    p->ino = st->st_ino;
    p->size = st->st_size;
    p->mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
}

/* Load `file`; fresh: through a descriptor of its own (see loader_open_fresh). */
static loader_plugin *ld_open(const char *file, int fresh, const vx_host_api *api,
                              char *err, size_t errlen) {
    loader_plugin *p = NULL;
    vx_plugin_entry_fn entry;
    const vx_plugin_info *d;
    void *sym;
    char *dl = NULL;
    struct stat st;

    if (err && errlen) err[0] = '\0';
    p = calloc(1, sizeof(*p));
    if (p == NULL) goto nomem;
    p->fd = -1;
    /* Without a '/', dlopen() would search the library path instead. */
    if (strchr(file, '/') == NULL) {
        dl = malloc(strlen(file) + 3);
        if (dl == NULL) goto nomem;
        memcpy(dl, "./", 2);
        strcpy(dl + 2, file);
    }
    p->path = strdup(file);
    if (p->path == NULL) goto nomem;
    if (fresh && access("/proc/self/fd", X_OK) == 0) {
        p->fd = open(file, O_RDONLY | O_CLOEXEC);
        if (p->fd >= 0) {
            free(dl);
            dl = malloc(32);
            if (dl == NULL) goto nomem;
            snprintf(dl, 32, "/proc/self/fd/%d", p->fd);
        }
    }
    if ((p->fd >= 0 ? fstat(p->fd, &st) : stat(file, &st)) == 0) ld_identity(p, &st);

    dlerror();
    p->handle = dlopen(dl ? dl : file, RTLD_NOW | RTLD_LOCAL);
    if (p->handle == NULL) {
        const char *why = dlerror();

        ld_err(err, errlen, "plugin %s: cannot load it: %s", file,
               why ? why : "unknown dlopen error");
        goto fail;
    }
    dlerror();
    sym = dlsym(p->handle, VX_PLUGIN_ENTRY_SYMBOL);
    if (sym == NULL) {
        ld_err(err, errlen, "plugin %s: not a voxray plugin (it exports no %s "
               "symbol); define it with VX_EXPORT and link with "
               "-export-symbols-regex '^%s$'", file, VX_PLUGIN_ENTRY_SYMBOL,
               VX_PLUGIN_ENTRY_SYMBOL);
        goto fail;
    }
    /* POSIX guarantees a data pointer from dlsym() converts to a function. */
    memcpy(&entry, &sym, sizeof(entry));
    ld_entry_capturing = 1;
    ld_entry_msg[0] = '\0';
    d = entry(api);
    ld_entry_capturing = 0;
    if (d == NULL) {
        if (ld_entry_msg[0])
            ld_err(err, errlen, "plugin %s: %s returned NULL: the plugin refused to "
                   "load: %s (this voxray speaks plugin ABI %d.%d)", file,
                   VX_PLUGIN_ENTRY_SYMBOL, ld_entry_msg, VX_ABI_MAJOR, VX_ABI_MINOR);
        else
            ld_err(err, errlen, "plugin %s: %s returned NULL: the plugin refused to "
                   "load and logged no reason (it may log one with "
                   "host->log(NULL, VX_LOG_ERROR, ...)); this voxray speaks plugin "
                   "ABI %d.%d", file, VX_PLUGIN_ENTRY_SYMBOL, VX_ABI_MAJOR, VX_ABI_MINOR);
        goto fail;
    }
    if (ld_check(p, d, err, errlen) < 0) goto fail;
    free(dl);
    return p;

nomem:
    ld_err(err, errlen, "plugin %s: out of memory", file);
fail:
    free(dl);
    loader_close(p);
    return NULL;
}

loader_plugin *loader_open_file(const char *file, const vx_host_api *api,
                                char *err, size_t errlen) {
    return ld_open(file, 0, api, err, errlen);
}

int loader_file_changed(const loader_plugin *p, const char *file) {
    struct stat st;
    if (stat(file, &st) != 0) return 1;
    if (strcmp(file, p->path) != 0) return 1;
    return st.st_dev != p->dev || st.st_ino != p->ino || st.st_size != p->size ||
           (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec != p->mtime_ns;
}

/* Split the next directory off the colon-separated *path into buf. Returns 0
 * at the end of the list. An empty entry reads as ".". */
static int ld_next_dir(const char **path, char *buf, size_t len) {
    const char *s = *path, *e;
    size_t n;

    if (s == NULL) return 0;
    e = strchr(s, ':');
    n = e ? (size_t)(e - s) : strlen(s);
    if (n == 0) {
        snprintf(buf, len, ".");
    } else {
        if (n >= len) n = len - 1;
        memcpy(buf, s, n);
        buf[n] = '\0';
    }
    *path = e ? e + 1 : NULL;
    return 1;
}

int loader_find(const char *path, const char *name, char *buf, size_t len) {
    const char *rest = path;
    char dir[4096];

    if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL) return -1;
    while (ld_next_dir(&rest, dir, sizeof(dir))) {
        snprintf(buf, len, "%s/%s.so", dir, name);
        if (access(buf, F_OK) == 0) return 0;
    }
    return -1;
}

static loader_plugin *ld_open_on_path(const char *path, const char *name, int fresh,
                                      const vx_host_api *api, char *err, size_t errlen) {
    const char *rest = path;
    char dir[4096], file[4096 + 256];

    if (err && errlen) err[0] = '\0';
    if (name == NULL || name[0] == '\0' || strchr(name, '/') != NULL ||
        strlen(name) > 200) {
        ld_err(err, errlen, "plugin '%.64s': not a plugin name (a file base name "
               "without '/' or .so, e.g. store_redis); fix the plugin key",
               name ? name : "");
        return NULL;
    }
    while (ld_next_dir(&rest, dir, sizeof(dir))) {
        snprintf(file, sizeof(file), "%s/%s.so", dir, name);
        if (access(file, F_OK) == 0) return ld_open(file, fresh, api, err, errlen);
    }
    ld_err(err, errlen, "plugin '%s' not found in %s (looked for %s.so); check "
           "[server] plugin_dir", name, path ? path : "", name);
    return NULL;
}

loader_plugin *loader_open(const char *path, const char *name,
                           const vx_host_api *api, char *err, size_t errlen) {
    return ld_open_on_path(path, name, 0, api, err, errlen);
}

loader_plugin *loader_open_fresh(const char *path, const char *name,
                                 const vx_host_api *api, char *err, size_t errlen) {
    return ld_open_on_path(path, name, 1, api, err, errlen);
}

void loader_close(loader_plugin *p) {
    if (p == NULL) return;
    if (p->handle) dlclose(p->handle);
    if (p->fd >= 0) close(p->fd);
    free(p->path);
    free(p);
}

static int ld_cmp(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The sorted "*.so" names in dir: a malloc'd array of malloc'd strings.
 * Returns the count, or -1 with errno set if the directory cannot be read or
 * memory runs out. */
static int ld_list_dir(const char *dir, char ***out) {
    DIR *dp;
    struct dirent *de;
    char **v = NULL, **nv;
    size_t n = 0, cap = 0;
    int saved;

    *out = NULL;
    dp = opendir(dir);
    if (dp == NULL) return -1;
    errno = 0;
    while ((de = readdir(dp)) != NULL) {
        size_t len = strlen(de->d_name);

        if (len <= 3 || strcmp(de->d_name + len - 3, ".so") != 0) continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            nv = realloc(v, cap * sizeof(*v));
            if (nv == NULL) goto fail;
            v = nv;
        }
        v[n] = strdup(de->d_name);
        if (v[n] == NULL) goto fail;
        n++;
        errno = 0;
    }
    if (errno != 0) goto fail;
    closedir(dp);
    if (n) qsort(v, n, sizeof(*v), ld_cmp);
    *out = v;
    return (int)n;

fail:
    saved = errno ? errno : ENOMEM;
    while (n) free(v[--n]);
    free(v);
    closedir(dp);
    errno = saved;
    return -1;
}

int loader_scan(const char *path, const vx_host_api *api,
                void (*cb)(void *user, const char *file,
                           const loader_plugin *p, const char *why),
                void *user, char *err, size_t errlen) {
    const char *rest = path;
    char dir[4096], file[4096 + 256], why[512];
    char first_err[4096 + 64] = "";
    int seen = 0, readable = 0;

    if (err && errlen) err[0] = '\0';
    while (ld_next_dir(&rest, dir, sizeof(dir))) {
        char **names;
        int n, i;

        n = ld_list_dir(dir, &names);
        if (n < 0) {
            if (first_err[0] == '\0')
                snprintf(first_err, sizeof(first_err), "%s: %s", dir, strerror(errno));
            continue;
        }
        readable++;
        for (i = 0; i < n; i++) {
            loader_plugin *p;

            snprintf(file, sizeof(file), "%s/%s", dir, names[i]);
            p = loader_open_file(file, api, why, sizeof(why));
            cb(user, file, p, p ? NULL : why);
            loader_close(p);
            free(names[i]);
            seen++;
        }
        free(names);
    }
    if (readable == 0) {
        ld_err(err, errlen, "cannot read any plugin directory in '%s' (%s); check "
               "[server] plugin_dir", path ? path : "",
               first_err[0] ? first_err : "empty path");
        return -1;
    }
    return seen;
}

const char *loader_kinds_str(unsigned kinds, char *buf, size_t len) {
    size_t i, at = 0;

    if (len == 0) return buf;
    buf[0] = '\0';
    for (i = 0; i < LD_NKINDS; i++) {
        if (!(kinds & ld_kinds[i].bit)) continue;
        at += snprintf(buf + at, at < len ? len - at : 0, "%s%s", at ? "," : "",
                       ld_kinds[i].name);
        if (at >= len) return buf;
    }
    if (kinds & ~(unsigned)LD_ALL_KINDS) {
        snprintf(buf + at, len - at, "%s0x%x", at ? "," : "",
                 kinds & ~(unsigned)LD_ALL_KINDS);
    }
    return buf;
}

const char *loader_error_name(int code) {
    switch (code) {
    case VX_EINVAL: return "invalid";
    case VX_ENOMEM: return "nomem";
    case VX_ENOTSUP: return "notsup";
    case VX_ETIMEDOUT: return "timeout";
    case VX_EUNAVAIL: return "unavailable";
    case VX_ERATELIMIT: return "ratelimit";
    case VX_EAUTH: return "auth";
    case VX_ECANCELED: return "canceled";
    case VX_EPROTO: return "protocol";
    case VX_EINTERNAL: return "internal";
    case VX_ENOTFOUND: return "notfound";
    default: return "unknown";
    }
}

int loader_instance_init(const loader_plugin *p, const vx_host_api *api,
                         vx_host *h, const vx_config *cfg, void **inst,
                         char *err, size_t errlen) {
    vx_error e;
    int rc;

    if (err && errlen) err[0] = '\0';
    *inst = NULL;
    if (p->info.init == NULL) return VX_OK;
    memset(&e, 0, sizeof(e));
    rc = p->info.init(api, h, cfg, inst, &e);
    if (rc == VX_OK) return VX_OK;
    /* A failed init owns nothing the host could shut down. */
    *inst = NULL;
    e.msg[sizeof(e.msg) - 1] = '\0';
    if (rc > 0) {
        ld_err(err, errlen, "plugin %s (instance '%s'): init failed: returned %d, "
               "not a VX_E* code: %s (internal)", p->path,
               cfg && cfg->instance ? cfg->instance : "?", rc,
               e.msg[0] ? e.msg : "no detail given");
        return VX_EINTERNAL;
    }
    ld_err(err, errlen, "plugin %s (instance '%s'): init failed: %s (%s)", p->path,
           cfg && cfg->instance ? cfg->instance : "?",
           e.msg[0] ? e.msg : "no detail given", loader_error_name(rc));
    return rc;
}

/* Host families of every plugin instance (gate.c): a plugin metric of the
 * same name would clash with them. */
static const char *const ld_reserved_metrics[] = {"calls_total", "call_duration_seconds",
                                                  "inflight", "info", NULL};

static int ld_ends_with(const char *s, size_t n, const char *suffix) {
    size_t l = strlen(suffix);

    return n >= l && memcmp(s + n - l, suffix, l) == 0;
}

int loader_metric_name_check(int type, const char *name, char *why, size_t len) {
    static const char *const series_suffixes[] = {"_bucket", "_count", "_sum", "_created", NULL};
    size_t n, i;

    if (why && len) why[0] = '\0';
    if (type < VX_METRIC_COUNTER || type > VX_METRIC_HISTOGRAM) {
        ld_err(why, len, "unknown metric type %d; use VX_METRIC_COUNTER, _GAUGE or _HISTOGRAM",
               type);
        return -1;
    }
    if (name == NULL || name[0] == '\0') {
        ld_err(why, len, "empty metric name");
        return -1;
    }
    n = strlen(name);
    if (n > 96) {
        ld_err(why, len, "metric name '%.40s...' is %zu characters, at most 96", name, n);
        return -1;
    }
    if (!(name[0] >= 'a' && name[0] <= 'z')) {
        ld_err(why, len, "metric name '%.96s' must start with a lowercase letter", name);
        return -1;
    }
    for (i = 0; i < n; i++) {
        char c = name[i];

        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) {
            ld_err(why, len, "metric name '%.96s' has '%c' at %zu: use [a-z0-9_] only", name,
                   c, i);
            return -1;
        }
    }
    if (strstr(name, "__")) {
        ld_err(why, len, "metric name '%.96s' contains \"__\"", name);
        return -1;
    }
    if (strncmp(name, "voxray_", 7) == 0) {
        ld_err(why, len, "metric name '%.96s' starts with voxray_: the host adds "
               "\"voxray_plugin_\" itself, drop the prefix", name);
        return -1;
    }
    for (i = 0; ld_reserved_metrics[i]; i++) {
        if (strcmp(name, ld_reserved_metrics[i]) == 0) {
            ld_err(why, len, "metric name '%.96s' is the host's own voxray_plugin_%s family; "
                   "start the name with the plugin's name instead", name, name);
            return -1;
        }
    }
    for (i = 0; series_suffixes[i]; i++) {
        if (ld_ends_with(name, n, series_suffixes[i])) {
            ld_err(why, len, "metric name '%.96s' ends in %s, a histogram series suffix",
                   name, series_suffixes[i]);
            return -1;
        }
    }
    if (type == VX_METRIC_COUNTER && !ld_ends_with(name, n, "_total")) {
        ld_err(why, len, "counter '%.96s' must end in _total", name);
        return -1;
    }
    if (type != VX_METRIC_COUNTER && ld_ends_with(name, n, "_total")) {
        ld_err(why, len, "%s '%.96s' must not end in _total (only counters do)",
               type == VX_METRIC_GAUGE ? "gauge" : "histogram", name);
        return -1;
    }
    return 0;
}
