/*
 * Session state in the session store: the conversation and the settings a
 * client chose, saved after every change so that a client can resume the
 * session by id (GET /v1/realtime?session_id=...) on any instance sharing
 * the store (Redis).
 *
 * Saves run on a strand of their own: the session never waits for the
 * store. The state is one JSON document (persist_state.c) under
 * "session:<id>", kept for [session] ttl after the last change.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plugin/gate.h"
#include "plugin/services.h"
#include "base/log.h"
#include "session/persist.h"
#include "session/session_int.h"
#include "base/worker.h"

static void key_of(const char *id, char *buf, size_t len) { snprintf(buf, len, "session:%s", id); }

/* ------------------------------------------------------------ saving */

/*
 * A save writes the whole document, so saves coalesce: a change marks the
 * state dirty and queues one flush behind the work already queued on the
 * session strand (a burst of changes costs one encode), and at most one
 * save is being written at a time; changes made meanwhile are written by
 * one more save when it is done. A slow or dead store therefore holds one
 * document per session, not one per change.
 */

typedef struct save_job {
    session *s; /* a reference is held */
    char key[96];
    char *json;
    uint32_t ttl_s;
} save_job;

static void flush_task(session *s, void *arg);

static void save_task(void *arg)
{
    save_job *j = arg;
    session *s = j->s;
    vx_error err;
    /* The store in service now: a reload sends later saves to its new one. */
    svc_gen *g = svc_acquire();
    if (g == NULL || gate_store_put(svc_store(g), j->key, j->json, strlen(j->json), j->ttl_s, &err) != 0)
        log_warn("session state not saved", "key", j->key, "error", g ? err.msg : "shutting down");
    svc_release(g);
    free(j->json);
    free(j);
    atomic_store(&s->persist_busy, 0);
    /* changes made while this one was written */
    sess_post(s, flush_task, NULL);
    session_unref(s);
}

static void flush_task(session *s, void *arg)
{
    (void)arg;
    s->persist_queued = 0;
    if (!s->persist_dirty || atomic_load(&s->persist_busy)) return;
    char *text = persist_state_encode(&s->conv, s->id, s->cfg.instructions, s->cfg.voice);
    if (text == NULL) return; /* out of memory: the next change tries again */
    save_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        free(text);
        return;
    }
    j->s = s;
    key_of(s->id, j->key, sizeof j->key);
    j->json = text;
    long long ttl = settings_live_session_ttl_ms() / 1000;
    j->ttl_s = ttl > 0 ? (uint32_t)ttl : 1;
    session_ref(s);
    atomic_store(&s->persist_busy, 1);
    s->persist_dirty = 0;
    if (strand_post(s->persist, save_task, j) != 0) {
        atomic_store(&s->persist_busy, 0);
        s->persist_dirty = 1;
        session_unref(s);
        free(j->json);
        free(j);
    }
}

void persist_save(session *s)
{
    if (s->persist == NULL) return;
    s->persist_dirty = 1;
    if (s->persist_queued) return;
    if (sess_post(s, flush_task, NULL) == 0) s->persist_queued = 1;
}

/* ------------------------------------------------------------ resuming */

int persist_restore(session *s, const char *id, char *why, size_t len)
{
    char key[96];
    void *val = NULL;
    size_t vlen = 0;
    vx_error err;
    key_of(id, key, sizeof key);
    svc_gen *g = svc_acquire();
    int rc = g ? gate_store_get(svc_store(g), key, &val, &vlen, &err) : VX_EUNAVAIL;
    if (g == NULL) snprintf(err.msg, sizeof err.msg, "shutting down");
    svc_release(g);
    if (rc == VX_ENOTFOUND) {
        snprintf(why, len, "no session '%s' (it ended more than [session] ttl ago, or never existed)", id);
        return -1;
    }
    if (rc != 0) {
        snprintf(why, len, "the session store failed: %s", err.msg);
        return -2;
    }
    int bad = persist_state_decode(val, vlen, &s->conv, &s->cfg.instructions, &s->cfg.voice);
    free(val);
    if (bad) {
        snprintf(why, len, "the stored state of session '%s' is unreadable", id);
        return -1;
    }
    snprintf(s->id, sizeof s->id, "%s", id);
    free(s->cfg.id);
    s->cfg.id = strdup(id);
    return 0;
}
