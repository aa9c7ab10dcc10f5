/*
 * Session state in the session store: the conversation and the settings a
 * client chose, saved after every change so that a client can resume the
 * session by id (GET /v1/realtime?session_id=...) on any instance sharing
 * the store (Redis).
 *
 * Saves run on a strand of their own: the session never waits for the
 * store. The state is one JSON document under "session:<id>", kept for
 * [session] ttl after the last change.
 */
#include "config.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gate.h"
#include "log.h"
#include "persist.h"
#include "session_int.h"
#include "worker.h"

#define STATE_VERSION 1

static const char *content_name(proto_content c)
{
    switch (c) {
    case PROTO_INPUT_TEXT: return "input_text";
    case PROTO_INPUT_AUDIO: return "input_audio";
    case PROTO_OUTPUT_TEXT: return "output_text";
    default: return "output_audio";
    }
}

static int content_of(const char *name, proto_content *out)
{
    static const struct { const char *n; proto_content c; } map[] = {
        {"input_text", PROTO_INPUT_TEXT}, {"input_audio", PROTO_INPUT_AUDIO},
        {"output_text", PROTO_OUTPUT_TEXT}, {"output_audio", PROTO_OUTPUT_AUDIO}};
    for (size_t i = 0; i < sizeof map / sizeof map[0]; i++)
        if (strcmp(name, map[i].n) == 0) {
            *out = map[i].c;
            return 0;
        }
    return -1;
}

int persist_valid_id(const char *id)
{
    size_t n = strlen(id);
    if (n == 0 || n > 64) return 0;
    for (size_t i = 0; i < n; i++) {
        char c = id[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
              c == '-'))
            return 0;
    }
    return 1;
}

static void key_of(const char *id, char *buf, size_t len) { snprintf(buf, len, "session:%s", id); }

/* ------------------------------------------------------------ saving */

typedef struct save_job {
    plug_instance *store;
    char key[96];
    char *json;
    uint32_t ttl_s;
} save_job;

static void save_task(void *arg)
{
    save_job *j = arg;
    vx_error err;
    if (gate_store_put(j->store, j->key, j->json, strlen(j->json), j->ttl_s, &err) != 0)
        log_warn("session state not saved", "key", j->key, "error", err.msg);
    free(j->json);
    free(j);
}

void persist_save(session *s)
{
    if (s->persist == NULL) return;
    json_t *o = json_object();
    json_t *items = json_array();
    json_object_set_new(o, "v", json_integer(STATE_VERSION));
    json_object_set_new(o, "id", json_string(s->id));
    if (s->cfg.instructions) json_object_set_new(o, "instructions", json_string(s->cfg.instructions));
    if (s->cfg.voice) json_object_set_new(o, "voice", json_string(s->cfg.voice));
    for (const item *it = s->conv.head; it; it = it->next) {
        /* Only settled items: an answer still being spoken is saved when done. */
        if (strcmp(it->status, "in_progress") == 0) continue;
        json_t *ji = json_pack("{s:s,s:s,s:s,s:s}", "id", it->id, "role", it->role, "content",
                               content_name(it->content), "status", it->status);
        if (ji == NULL) continue;
        if (it->text) {
            json_t *t = json_string(it->text);
            if (t) json_object_set_new(ji, "text", t);
        }
        if (it->type[0]) {
            json_object_set_new(ji, "type", json_string(it->type));
            json_object_set_new(ji, "call_id", json_string(it->call_id));
            if (it->name) json_object_set_new(ji, "name", json_string(it->name));
        }
        json_array_append_new(items, ji);
    }
    json_object_set_new(o, "items", items);
    char *text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (text == NULL) return;
    save_job *j = calloc(1, sizeof *j);
    if (j == NULL) {
        free(text);
        return;
    }
    j->store = s->a->plugins->store;
    key_of(s->id, j->key, sizeof j->key);
    j->json = text;
    long long ttl = s->a->s.session_ttl_ms / 1000;
    j->ttl_s = ttl > 0 ? (uint32_t)ttl : 1;
    if (strand_post(s->persist, save_task, j) != 0) {
        free(j->json);
        free(j);
    }
}

/* ------------------------------------------------------------ resuming */

int persist_restore(session *s, const char *id, char *why, size_t len)
{
    char key[96];
    void *val = NULL;
    size_t vlen = 0;
    vx_error err;
    key_of(id, key, sizeof key);
    int rc = gate_store_get(s->a->plugins->store, key, &val, &vlen, &err);
    if (rc == VX_ENOTFOUND) {
        snprintf(why, len, "no session '%s' (it ended more than [session] ttl ago, or never existed)", id);
        return -1;
    }
    if (rc != 0) {
        snprintf(why, len, "the session store failed: %s", err.msg);
        return -2;
    }
    json_error_t jerr;
    json_t *o = json_loadb(val, vlen, 0, &jerr);
    free(val);
    json_t *items = o ? json_object_get(o, "items") : NULL;
    if (o == NULL || json_integer_value(json_object_get(o, "v")) != STATE_VERSION || !json_is_array(items)) {
        json_decref(o);
        snprintf(why, len, "the stored state of session '%s' is unreadable", id);
        return -1;
    }
    const char *instr = json_string_value(json_object_get(o, "instructions"));
    const char *voice = json_string_value(json_object_get(o, "voice"));
    if (instr) {
        free(s->cfg.instructions);
        s->cfg.instructions = strdup(instr);
    }
    if (voice) {
        free(s->cfg.voice);
        s->cfg.voice = strdup(voice);
    }
    size_t i;
    json_t *ji;
    json_array_foreach(items, i, ji) {
        const char *iid = json_string_value(json_object_get(ji, "id"));
        const char *role = json_string_value(json_object_get(ji, "role"));
        const char *ct = json_string_value(json_object_get(ji, "content"));
        const char *st = json_string_value(json_object_get(ji, "status"));
        const char *text = json_string_value(json_object_get(ji, "text"));
        const char *type = json_string_value(json_object_get(ji, "type"));
        proto_content c;
        if (!iid || !role || !ct || content_of(ct, &c) != 0) continue;
        if (type && (strcmp(type, "function_call") == 0 || strcmp(type, "function_call_output") == 0))
            conv_add_function(&s->conv, NULL, iid, type, json_string_value(json_object_get(ji, "call_id")),
                              json_string_value(json_object_get(ji, "name")), text, st ? st : "completed");
        else
            conv_add(&s->conv, NULL, iid, role, c, text, st ? st : "completed");
    }
    json_decref(o);
    snprintf(s->id, sizeof s->id, "%s", id);
    free(s->cfg.id);
    s->cfg.id = strdup(id);
    return 0;
}
