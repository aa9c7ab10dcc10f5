/*
 * The conversation of a session: an ordered list of message items, and the
 * prompt built from it for the LLM.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "session/session_int.h"

item *conv_find(conversation *cv, const char *id)
{
    for (item *it = cv->head; it; it = it->next)
        if (strcmp(it->id, id) == 0) return it;
    return NULL;
}

/* What an item costs, for [session] max_conversation_bytes. */
static size_t item_size(const item *it)
{
    return sizeof *it + (it->text ? strlen(it->text) : 0) + (it->name ? strlen(it->name) : 0);
}

void conv_touch(conversation *cv, item *it)
{
    size_t now = item_size(it);
    cv->bytes = cv->bytes - it->acct + now;
    it->acct = now;
}

item *conv_add(conversation *cv, item *after, const char *id, const char *role,
               proto_content content, const char *text, const char *status)
{
    if (id && conv_find(cv, id)) return NULL;
    item *it = calloc(1, sizeof *it);
    if (it == NULL) return NULL;
    if (id) snprintf(it->id, sizeof it->id, "%s", id);
    else proto_new_id("item_", it->id, sizeof it->id);
    snprintf(it->role, sizeof it->role, "%s", role);
    snprintf(it->status, sizeof it->status, "%s", status ? status : "completed");
    it->content = content;
    if (text && (it->text = strdup(text)) == NULL) {
        free(it);
        return NULL;
    }
    if (after == CONV_AT_HEAD) after = NULL; /* first */
    else if (after == NULL) after = cv->tail; /* append */
    it->prev = after;
    it->next = after ? after->next : cv->head;
    if (it->next) it->next->prev = it;
    else cv->tail = it;
    if (after) after->next = it;
    else cv->head = it;
    cv->n++;
    conv_touch(cv, it);
    return it;
}

item *conv_add_function(conversation *cv, item *after, const char *id, const char *type, const char *call_id,
                        const char *name, const char *text, const char *status)
{
    char *nm = name ? strdup(name) : NULL;
    if (name && nm == NULL) return NULL;
    item *it = conv_add(cv, after, id, strcmp(type, "function_call") == 0 ? "assistant" : "tool",
                        PROTO_OUTPUT_TEXT, text ? text : "", status);
    if (it == NULL) {
        free(nm);
        return NULL;
    }
    snprintf(it->type, sizeof it->type, "%s", type);
    snprintf(it->call_id, sizeof it->call_id, "%s", call_id ? call_id : "");
    it->name = nm;
    conv_touch(cv, it);
    return it;
}

void conv_remove(conversation *cv, item *it)
{
    if (it->prev) it->prev->next = it->next;
    else cv->head = it->next;
    if (it->next) it->next->prev = it->prev;
    else cv->tail = it->prev;
    cv->n--;
    cv->bytes -= it->acct;
    conv_item_free(it);
}

item *conv_find_call(conversation *cv, const char *call_id)
{
    for (item *it = cv->head; it; it = it->next)
        if (strcmp(it->type, "function_call") == 0 && strcmp(it->call_id, call_id) == 0) return it;
    return NULL;
}

char *conv_messages_json(const conversation *cv, const char *instructions)
{
    int any = 0;
    for (const item *it = cv->head; it && !any; it = it->next) any = it->type[0] != '\0';
    if (!any) return NULL;
    json_t *a = json_array(), *last = NULL;
    if (a == NULL) return NULL;
    if (instructions && *instructions)
        json_array_append_new(a, json_pack("{s:s, s:s}", "role", "system", "content", instructions));
    for (const item *it = cv->head; it; it = it->next) {
        if (strcmp(it->type, "function_call") == 0) {
            json_t *call = json_pack("{s:s, s:s, s:{s:s, s:s}}", "id", it->call_id, "type", "function", "function",
                                     "name", it->name ? it->name : "", "arguments",
                                     it->text && *it->text ? it->text : "{}");
            /* Calls right after an assistant message belong to it. */
            if (last == NULL || strcmp(json_string_value(json_object_get(last, "role")), "assistant") != 0) {
                last = json_pack("{s:s, s:n}", "role", "assistant", "content");
                json_array_append_new(a, last);
            }
            json_t *calls = json_object_get(last, "tool_calls");
            if (calls == NULL) {
                calls = json_array();
                json_object_set_new(last, "tool_calls", calls);
            }
            json_array_append_new(calls, call);
        } else if (strcmp(it->type, "function_call_output") == 0) {
            last = json_pack("{s:s, s:s, s:s}", "role", "tool", "tool_call_id", it->call_id, "content",
                             it->text ? it->text : "");
            json_array_append_new(a, last);
        } else {
            if (it->text == NULL || it->text[0] == '\0') continue;
            last = json_pack("{s:s, s:s}", "role", it->role, "content", it->text);
            json_array_append_new(a, last);
        }
    }
    char *text = json_dumps(a, JSON_COMPACT);
    json_decref(a);
    return text;
}

int conv_set_text(item *it, const char *text)
{
    char *t = strdup(text ? text : "");
    if (t == NULL) return -1;
    free(it->text);
    it->text = t;
    return 0;
}

void conv_free(conversation *cv)
{
    item *it = cv->head;
    while (it) {
        item *n = it->next;
        conv_item_free(it);
        it = n;
    }
    memset(cv, 0, sizeof *cv);
}

vx_message *conv_messages(const conversation *cv, const char *instructions, size_t *n)
{
    vx_message *m = calloc(cv->n + 1, sizeof *m);
    size_t k = 0;
    if (m == NULL) return NULL;
    if (instructions && *instructions) {
        m[k].role = "system";
        m[k].content = instructions;
        k++;
    }
    for (const item *it = cv->head; it; it = it->next) {
        if (it->text == NULL || it->text[0] == '\0' || it->type[0]) continue;
        m[k].role = it->role;
        m[k].content = it->text;
        k++;
    }
    *n = k;
    return m;
}

item *conv_detached(const char *role, proto_content content)
{
    item *it = calloc(1, sizeof *it);
    if (it == NULL) return NULL;
    proto_new_id("item_", it->id, sizeof it->id);
    snprintf(it->role, sizeof it->role, "%s", role);
    snprintf(it->status, sizeof it->status, "in_progress");
    it->content = content;
    return it;
}

void conv_item_free(item *it)
{
    if (it == NULL) return;
    free(it->text);
    free(it->name);
    free(it);
}

vx_message *conv_messages_from(const conversation *cv, const char *instructions, const proto_input_item *in,
                               size_t n_in, size_t *n, const char **missing)
{
    vx_message *m = calloc(n_in + 1, sizeof *m);
    size_t k = 0;
    *missing = NULL;
    if (m == NULL) return NULL;
    if (instructions && *instructions) {
        m[k].role = "system";
        m[k].content = instructions;
        k++;
    }
    for (size_t i = 0; i < n_in; i++) {
        if (in[i].ref_id) {
            const item *it = conv_find((conversation *)cv, in[i].ref_id);
            if (it == NULL) {
                *missing = in[i].ref_id;
                free(m);
                return NULL;
            }
            if (it->text == NULL || it->text[0] == '\0' || it->type[0]) continue;
            m[k].role = it->role;
            m[k].content = it->text;
        } else {
            if (in[i].text == NULL || in[i].text[0] == '\0') continue;
            m[k].role = in[i].role;
            m[k].content = in[i].text;
        }
        k++;
    }
    *n = k;
    return m;
}

proto_item conv_view(const item *it)
{
    proto_item p;
    p.id = it->id;
    p.role = it->role;
    p.status = it->status;
    p.content = it->content;
    p.text = it->text;
    p.type = it->type[0] ? it->type : NULL;
    p.call_id = it->call_id;
    p.name = it->name;
    return p;
}

int conv_words(const char *text)
{
    int n = 0, in = 0;
    for (const unsigned char *p = (const unsigned char *)text; p && *p; p++) {
        if (isspace(*p)) in = 0;
        else if (!in) {
            in = 1;
            n++;
        }
    }
    return n;
}

void conv_keep_words(item *it, int keep)
{
    if (it->text == NULL) return;
    char *p = it->text;
    for (int w = 0; w < keep && *p; w++) {
        while (*p && isspace((unsigned char)*p)) p++;
        while (*p && !isspace((unsigned char)*p)) p++;
    }
    *p = '\0';
}
