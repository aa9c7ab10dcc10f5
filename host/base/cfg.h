/*
 * Configuration: an INI file (inih) plus VOXRAY_<SECTION>_<KEY> environment
 * overrides, validated against schemas before any plugin is initialised.
 *
 * cfg_file holds raw entries with where they came from (file and line, or the
 * environment variable), so every error names the place, the key, the value
 * and what is allowed:
 *
 *   voxray.ini:12: [server] max_sessions = "lots": not an integer (allowed: integer 1..1000000)
 *   environment VOXRAY_LOG_LEVEL = "loud": not one of debug|info|warn|error
 *
 * Values of keys flagged VX_CFG_SECRET are never repeated in messages.
 */
#ifndef VOXRAY_CFG_H
#define VOXRAY_CFG_H

#include <stddef.h>
#include <voxray/plugin.h>

typedef struct cfg_item {
    char *section; /* "server", "plugin.redis" */
    char *key;
    char *value;
    int line;  /* line in the file, 0 when from the environment */
    char *env; /* the variable that set it, or NULL */
    int used;  /* matched by a schema (unknown keys have used == 0) */
} cfg_item;

typedef struct cfg_section {
    char *name;
    int line;
} cfg_section;

typedef struct cfg_file {
    char *path; /* as given; "" for a string */
    cfg_item *items;
    size_t n, cap;
    /* Every [section] header seen, even one with no keys under it, so that a
     * misspelled empty section is still reported. */
    cfg_section *sections;
    size_t n_sections, cap_sections;
} cfg_file;

/* A schema entry of the core sections. */
typedef struct cfg_key {
    const char *section;
    vx_config_key k;
} cfg_key;

/* Parse an INI file. Lines of any length are accepted (up to 1 MiB).
 * Duplicate keys within a section are an error. Returns 0, or -1 with one
 * line in err ("voxray.ini:3: syntax error: expected key = value"). */
int cfg_parse_file(const char *path, cfg_file **out, char *err, size_t errlen);
/* Same for text in memory; `name` is used in messages. */
int cfg_parse_string(const char *text, const char *name, cfg_file **out,
                     char *err, size_t errlen);
void cfg_free(cfg_file *c);

/* The environment variable name of section/key: VOXRAY_SERVER_MAX_SESSIONS,
 * VOXRAY_PLUGIN_REDIS_ADDRESS ('.', '-' become '_', letters upper-cased). */
void cfg_env_name(const char *section, const char *key, char *buf, size_t len);

/* If VOXRAY_<SECTION>_<KEY> is set, it replaces (or adds) the entry. */
int cfg_apply_env(cfg_file *c, const char *section, const char *key);

/* The entry for section/key (marks it used), or NULL. */
cfg_item *cfg_find(cfg_file *c, const char *section, const char *key);

/* "voxray.ini:12: [server] max_sessions" or
 * "environment VOXRAY_SERVER_MAX_SESSIONS" into buf. */
const char *cfg_where(const cfg_file *c, const cfg_item *it, char *buf, size_t len);

/* Check one value against a schema key. 0 if fine; otherwise -1 with the
 * reason and what is allowed in why ("not an integer (allowed: integer 1..10)"). */
int cfg_check_value(const vx_config_key *k, const char *value, char *why, size_t len);

/* "integer 1..100", "one of a|b", "duration (e.g. 250ms, 2s)". */
const char *cfg_allowed(const vx_config_key *k, char *buf, size_t len);

/* Typed parsers (accept what cfg_check_value accepts). Return 0 or -1. */
int cfg_parse_bool(const char *s, int *out);
int cfg_parse_int(const char *s, long long *out);
int cfg_parse_double(const char *s, double *out);
int cfg_parse_duration_ms(const char *s, long long *out);
int cfg_parse_duration_ns(const char *s, long long *out);
/* Bytes: 4096, 64k, 64K, 64KiB (1024), 64kB, 64KB (1000); M, G likewise. */
int cfg_parse_size(const char *s, unsigned long long *out);

/* What cfg_kv_get parses a value as (the typed getters of host API 1.6). */
typedef enum cfg_get_type {
    CFG_GET_INT = 1,    /* int64_t */
    CFG_GET_FLOAT,      /* double */
    CFG_GET_BOOL,       /* int, 1 or 0 */
    CFG_GET_DURATION_MS, /* int64_t */
    CFG_GET_DURATION_NS, /* int64_t */
    CFG_GET_SIZE        /* uint64_t */
} cfg_get_type;

/* Find key in items[0..n) and parse its value as `type` into *out. Returns
 * VX_OK, VX_ENOTFOUND (no such key, or no value) or VX_EINVAL (the value is
 * not of that type). */
int cfg_kv_get(const vx_kv *items, size_t n, const char *key, cfg_get_type type, void *out);
/* host:port, [v6]:port, :port. host may be empty (= all interfaces). */
int cfg_parse_address(const char *s, char *host, size_t hostlen, int *port);

/* The core schema (sections server, log, metrics, session, stt, llm, tts, recording),
 * terminated by an entry with section NULL. */
extern const cfg_key cfg_core_schema[];
/* The section names the host knows besides plugin.* . */
int cfg_is_core_section(const char *section);

#endif
