/*
 * libFuzzer target: arbitrary configuration file content through the load
 * and validation path of the daemon (host/base/cfg.c over inih, host/settings.c,
 * then what main.c configures from the settings: client limits, the metrics
 * ACL).
 *
 * Invariants checked:
 *   - the file reader and the string reader agree (result, message, every
 *     entry) on text without NUL bytes;
 *   - every entry names the line it is on: that line holds its key and its
 *     value;
 *   - the entries written back as "[section]" and "key=value" lines parse
 *     to the same entries;
 *   - a refusal is one non-empty line, and never repeats the value of a
 *     secret key ([auth] api_keys);
 *   - settings_load accepts only what limits_configure and acl_parse then
 *     accept too (the daemon must not fail later on what it validated).
 */
#define _GNU_SOURCE
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "base/acl.h"
#include "base/cfg.h"
#include "net/client_limits.h"
#include "base/log.h"
#include "settings.h"

static int memfd = -1;
static char memfd_path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    log_set_level(VX_LOG_ERROR + 1); /* quiet */
    /* Values must come from the text alone. */
    for (const cfg_key *k = cfg_core_schema; k->section; k++) {
        char name[256];
        cfg_env_name(k->section, k->k.key, name, sizeof name);
        unsetenv(name);
    }
    memfd = memfd_create("fuzz_cfg", 0);
    if (memfd >= 0) snprintf(memfd_path, sizeof memfd_path, "/proc/self/fd/%d", memfd);
    return 0;
}

static void one_line(const char *err, size_t len)
{
    if (memchr(err, '\0', len) == NULL || err[0] == '\0' || strchr(err, '\n') != NULL) abort();
}

static void same_items(const cfg_file *a, const cfg_file *b, int lines)
{
    if (a->n != b->n) abort();
    for (size_t i = 0; i < a->n; i++) {
        const cfg_item *x = &a->items[i], *y = &b->items[i];
        if (strcmp(x->section, y->section) != 0 || strcmp(x->key, y->key) != 0 ||
            strcmp(x->value, y->value) != 0 || (lines && x->line != y->line))
            abort();
    }
}

/* Physical line `line` (1-based) of text: start and length. */
static int nth_line(const char *text, size_t size, int line, const char **s, size_t *n)
{
    const char *p = text, *end = text + size;
    for (int l = 1; l < line; l++) {
        p = memchr(p, '\n', (size_t)(end - p));
        if (p == NULL) return -1;
        p++;
    }
    const char *e = memchr(p, '\n', (size_t)(end - p));
    *s = p;
    *n = (size_t)((e ? e : end) - p);
    return 0;
}

static void items_on_their_lines(const cfg_file *c, const char *text, size_t size)
{
    for (size_t i = 0; i < c->n; i++) {
        const cfg_item *it = &c->items[i];
        const char *s;
        size_t n;
        if (it->line < 1 || nth_line(text, size, it->line, &s, &n) != 0) abort();
        if (memmem(s, n, it->key, strlen(it->key)) == NULL ||
            memmem(s, n, it->value, strlen(it->value)) == NULL)
            abort();
    }
}

/* Write the entries back as INI text and parse that. */
static void round_trip(const cfg_file *c)
{
    size_t cap = 64;
    for (size_t i = 0; i < c->n; i++)
        cap += strlen(c->items[i].section) + strlen(c->items[i].key) + strlen(c->items[i].value) + 8;
    char *text = malloc(cap), err[1024];
    size_t len = 0;
    cfg_file *back = NULL;
    if (text == NULL) abort();
    for (size_t i = 0; i < c->n; i++) {
        const cfg_item *it = &c->items[i];
        if (i == 0 || strcmp(it->section, c->items[i - 1].section) != 0)
            len += (size_t)sprintf(text + len, "[%s]\n", it->section);
        len += (size_t)sprintf(text + len, "%s=%s\n", it->key, it->value);
    }
    text[len] = '\0';
    if (cfg_parse_string(text, "", &back, err, sizeof err) != 0) abort();
    same_items(c, back, 0);
    cfg_free(back);
    free(text);
}

/* The secret values of c that occur nowhere else in the text: a message
 * holding one of them leaked it. */
static void no_secret_in(const cfg_file *c, const char *text, const char *err)
{
    for (size_t i = 0; i < c->n; i++) {
        const cfg_item *it = &c->items[i];
        size_t vl = strlen(it->value);
        if (strcmp(it->section, "auth") != 0 || strcmp(it->key, "api_keys") != 0 || vl < 8) continue;
        const char *first = strstr(text, it->value);
        if (first && strstr(first + 1, it->value) == NULL && strstr(err, it->value) != NULL) abort();
    }
}

static void validate(cfg_file *c, const char *text)
{
    settings s;
    char err[1024];

    memset(err, 'x', sizeof err);
    if (settings_load(c, &s, err, sizeof err) != 0) {
        one_line(err, sizeof err);
        no_secret_in(c, text, err);
        return;
    }
    if (!s.config_path || !s.config_dir || !s.plugin_dir || !s.web_root || !s.store || !*s.store ||
        !s.instructions || !s.voice || !s.rec_sink || !s.rec_spool_dir || !s.rec_dead_letter_dir ||
        !s.allowed_origins || !s.trusted_proxies || !s.auth_api_keys || !s.auth_keys_file)
        abort();
    for (int st = 0; st < STAGE_COUNT; st++)
        if (s.providers[st] == NULL) abort();
    if (s.max_sessions < 1 || s.http_threads < 1 || s.max_message_size < 1024) abort();
    if (limits_configure(&s, err, sizeof err) != 0) abort();
    if (*s.metrics_allow) {
        acl *a = NULL;
        if (acl_parse(s.metrics_allow, &a, err, sizeof err) != 0) abort();
        acl_free(a);
    }
    settings_free(&s);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1), es[1024], ef[1024];
    cfg_file *cs = NULL, *cf = NULL;
    int has_nul = memchr(data, '\0', size) != NULL;

    if (text == NULL) return 0;
    memcpy(text, data, size);
    text[size] = '\0';

    memset(es, 'x', sizeof es);
    int rs = cfg_parse_string(text, memfd_path, &cs, es, sizeof es);
    if (rs == 0) {
        if (cs == NULL) abort();
        items_on_their_lines(cs, text, strlen(text));
        round_trip(cs);
    } else {
        if (cs != NULL) abort();
        one_line(es, sizeof es);
    }

    if (memfd >= 0) {
        if (ftruncate(memfd, 0) != 0 || pwrite(memfd, data, size, 0) != (ssize_t)size) abort();
        memset(ef, 'x', sizeof ef);
        int rf = cfg_parse_file(memfd_path, &cf, ef, sizeof ef);
        if (rf == 0) items_on_their_lines(cf, (const char *)data, size);
        else one_line(ef, sizeof ef);
        if (!has_nul) {
            if (rf != rs || (rf != 0 && strcmp(ef, es) != 0)) abort();
            if (rf == 0) same_items(cs, cf, 1);
        }
        if (rf == 0) validate(cf, text);
        cfg_free(cf);
    } else if (rs == 0) {
        validate(cs, text);
    }
    cfg_free(cs);
    free(text);
    return 0;
}
