/*
 * tool_rec: records the on_tool_call events of an LLM stream, for the tests
 * of llm_openai and sim. It wraps a plugin_harness recorder: tokens, done
 * and errors go on to it (so ph_rec_wait and ph_rec_snap work as usual),
 * and the fragments of each call are checked and reassembled here:
 *
 *   - calls[i] holds the call of index i: the id and name of its first
 *     fragment and its arguments concatenated;
 *   - `bad` counts what the ABI forbids: an index past the calls seen so
 *     far plus one, a first fragment without id or name, a later fragment
 *     with one, a fragment after on_done/on_error, a fragment that is not
 *     whole UTF-8 characters;
 *   - tokens_before is how many tokens had arrived at the first fragment.
 *
 * Include it once per test program, after plugin_harness.h. tr_new()'s
 * recorders live until tr_free_all(), which a test program calls in its
 * teardown after the fixture closed every stream.
 */
#ifndef VX_TEST_TOOL_REC_H
#define VX_TEST_TOOL_REC_H

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <voxray/plugin.h>

#include "plugin_harness.h"

#define TR_CALLS 8

typedef struct tr_call {
    char id[64], name[64];
    char args[1024]; /* the pieces, concatenated as far as they fit */
    size_t fragments;
} tr_call;

typedef struct tool_rec {
    ph_rec *r; /* everything but the calls */
    vx_llm_events inner;
    pthread_mutex_t mu;
    tr_call calls[TR_CALLS];
    size_t n_calls; /* highest index seen + 1 */
    size_t fragments;
    size_t tokens_before; /* tokens seen when the first fragment came */
    int bad;
    struct tool_rec *next;
} tool_rec;

static tool_rec *tr_all;

/* 1 when p[0..len) is whole, well-formed UTF-8 characters. */
static int tr_utf8(const char *p, size_t len) {
    const unsigned char *s = (const unsigned char *)p, *end = s + len;

    while (s < end) {
        size_t n = *s < 0x80             ? 1
                   : (*s & 0xe0) == 0xc0 ? 2
                   : (*s & 0xf0) == 0xe0 ? 3
                   : (*s & 0xf8) == 0xf0 ? 4
                                         : 0;
        if (!n || (size_t)(end - s) < n) return 0;
        for (size_t i = 1; i < n; i++)
            if ((s[i] & 0xc0) != 0x80) return 0;
        s += n;
    }
    return 1;
}

static void tr_on_token(void *user, const char *text, size_t len) {
    tool_rec *t = user;
    t->inner.on_token(t->inner.user, text, len);
}

static void tr_on_done(void *user, const vx_usage *usage) {
    tool_rec *t = user;
    t->inner.on_done(t->inner.user, usage);
}

static void tr_on_error(void *user, const vx_error *err) {
    tool_rec *t = user;
    t->inner.on_error(t->inner.user, err);
}

static void tr_on_tool_call(void *user, uint32_t index, const char *call_id, const char *name,
                            const char *args, size_t len) {
    tool_rec *t = user;
    size_t tokens, ended;

    pthread_mutex_lock(&t->r->mu);
    tokens = t->r->d.n_tokens;
    ended = (size_t)(t->r->d.done + t->r->d.errors);
    pthread_mutex_unlock(&t->r->mu);
    pthread_mutex_lock(&t->mu);
    if (!t->fragments) t->tokens_before = tokens;
    t->fragments++;
    if (ended || index > t->n_calls || index >= TR_CALLS || (len && !args) ||
        !tr_utf8(args, len)) {
        t->bad++;
    } else {
        tr_call *c = &t->calls[index];
        if (index == t->n_calls) {
            t->n_calls++;
            if (!call_id || !name || !*call_id || !*name) t->bad++;
            snprintf(c->id, sizeof(c->id), "%s", call_id ? call_id : "");
            snprintf(c->name, sizeof(c->name), "%s", name ? name : "");
        } else if (call_id || name) {
            t->bad++;
        }
        c->fragments++;
        if (strlen(c->args) + len < sizeof(c->args)) strncat(c->args, args ? args : "", len);
    }
    pthread_mutex_unlock(&t->mu);
}

/* A recorder wrapping r, freed by tr_free_all. */
static tool_rec *tr_new(ph_rec *r) {
    tool_rec *t = calloc(1, sizeof(*t));

    if (!t) abort();
    t->r = r;
    t->inner = ph_llm_events(r);
    pthread_mutex_init(&t->mu, NULL);
    t->next = tr_all;
    tr_all = t;
    return t;
}

/* Events that record into t, of the current ABI size. */
static vx_llm_events tr_events(tool_rec *t) {
    vx_llm_events e = {.struct_size = sizeof(e),
                       .user = t,
                       .on_token = tr_on_token,
                       .on_done = tr_on_done,
                       .on_error = tr_on_error,
                       .on_tool_call = tr_on_tool_call};
    return e;
}

/* The same events as a host built for ABI 1.2 passes them: the struct
 * ends before on_tool_call (whose slot still points at the recorder, so a
 * plugin that read it anyway would be caught). */
static vx_llm_events tr_events_1_2(tool_rec *t) {
    vx_llm_events e = tr_events(t);
    e.struct_size = (uint32_t)(VX_LLM_EVENTS_SIZE_1_3 - sizeof(void (*)(void)));
    return e;
}

/* A copy of what t saw. */
static tool_rec tr_snap(tool_rec *t) {
    tool_rec c;

    pthread_mutex_lock(&t->mu);
    c = *t;
    pthread_mutex_unlock(&t->mu);
    return c;
}

static void tr_free_all(void) {
    while (tr_all) {
        tool_rec *t = tr_all;
        tr_all = t->next;
        pthread_mutex_destroy(&t->mu);
        free(t);
    }
}

#endif
