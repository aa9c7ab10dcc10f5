/*
 * The saved state of a session as one JSON document, the value persist.c
 * keeps in the session store:
 *
 *   {"v":1, "id":"sess_...", "instructions":"...", "voice":"...",
 *    "items":[{"id","role","content","status","text"?,
 *              "type"?, "call_id"?, "name"?}, ...]}
 *
 * Encoding and decoding touch no session and no store, so a document read
 * back from the store (written by any version, or damaged) can be checked
 * on its own.
 */
#include "config.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "session/persist.h"
#include "session/session_int.h"

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

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0) return 1;
    return 0;
}

/* Whether an item read back can be restored as it was saved: what a client
 * could have created (the protocol checks those) and what fits the item's
 * fields whole. A longer id would be cut, possibly inside a UTF-8
 * sequence, and two ids could become one; an unknown role would reach the
 * LLM. Such an item (a damaged document, or one from another program) is
 * left out, like one without an id. */
static int item_fits(const char *id, const char *role, const char *status, const char *type,
                     const char *call_id)
{
    static const char *const roles[] = {"user", "assistant", "system", NULL};
    static const char *const statuses[] = {"completed", "in_progress", "incomplete", NULL};
    int fn = type && (strcmp(type, "function_call") == 0 || strcmp(type, "function_call_output") == 0);
    if (*id == '\0' || strlen(id) >= sizeof ((item *)0)->id) return 0;
    if (status && !one_of(status, statuses)) return 0;
    if (fn) return !call_id || strlen(call_id) < sizeof ((item *)0)->call_id;
    return one_of(role, roles);
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

char *persist_state_encode(const conversation *conv, const char *id, const char *instructions,
                           const char *voice)
{
    json_t *o = json_object();
    json_t *items = json_array();
    json_object_set_new(o, "v", json_integer(STATE_VERSION));
    json_object_set_new(o, "id", json_string(id));
    if (instructions) json_object_set_new(o, "instructions", json_string(instructions));
    if (voice) json_object_set_new(o, "voice", json_string(voice));
    for (const item *it = conv->head; it; it = it->next) {
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
    return text;
}

int persist_state_decode(const void *text, size_t len, conversation *conv, char **instructions,
                         char **voice)
{
    json_error_t jerr;
    json_t *o = json_loadb(text, len, 0, &jerr);
    json_t *items = o ? json_object_get(o, "items") : NULL;
    if (o == NULL || json_integer_value(json_object_get(o, "v")) != STATE_VERSION || !json_is_array(items)) {
        json_decref(o);
        return -1;
    }
    const char *instr = json_string_value(json_object_get(o, "instructions"));
    const char *vc = json_string_value(json_object_get(o, "voice"));
    if (instr) {
        free(*instructions);
        *instructions = strdup(instr);
    }
    if (vc) {
        free(*voice);
        *voice = strdup(vc);
    }
    size_t i;
    json_t *ji;
    json_array_foreach(items, i, ji) {
        const char *iid = json_string_value(json_object_get(ji, "id"));
        const char *role = json_string_value(json_object_get(ji, "role"));
        const char *ct = json_string_value(json_object_get(ji, "content"));
        const char *st = json_string_value(json_object_get(ji, "status"));
        const char *itext = json_string_value(json_object_get(ji, "text"));
        const char *type = json_string_value(json_object_get(ji, "type"));
        proto_content c;
        if (!iid || !role || !ct || content_of(ct, &c) != 0) continue;
        if (!item_fits(iid, role, st, type, json_string_value(json_object_get(ji, "call_id")))) continue;
        if (type && (strcmp(type, "function_call") == 0 || strcmp(type, "function_call_output") == 0))
            conv_add_function(conv, NULL, iid, type, json_string_value(json_object_get(ji, "call_id")),
                              json_string_value(json_object_get(ji, "name")), itext, st ? st : "completed");
        else
            conv_add(conv, NULL, iid, role, c, itext, st ? st : "completed");
    }
    json_decref(o);
    return 0;
}
