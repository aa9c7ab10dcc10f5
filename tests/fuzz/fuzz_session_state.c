/*
 * libFuzzer target: a session's saved state as read back from the session
 * store (host/session/persist_state.c over host/session/conversation.c), on arbitrary
 * bytes: the store is shared, may hold what another version wrote, or be
 * damaged.
 *
 * Invariants checked:
 *   - a refused document changes nothing;
 *   - every restored item is one the rest of the host can work with, as if
 *     a client had created it: a non-empty id that fits the item and is
 *     unique, a known role, status and type, a call_id that fits, valid
 *     UTF-8 everywhere (events, prompts and the next save are built from
 *     them);
 *   - saving what was restored and restoring that gives the same session
 *     (items still being spoken are not saved), as text that is JSON;
 *   - the prompts built from it (conv_messages, conv_messages_json) are
 *     valid.
 */
#include "config.h"

#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "session/persist.h"
#include "session/session_int.h"

static int utf8(const char *s)
{
    json_t *j = json_string(s);
    json_decref(j);
    return j != NULL;
}

static int one_of(const char *s, const char *const *set)
{
    for (; *set; set++)
        if (strcmp(s, *set) == 0) return 1;
    return 0;
}

static void check_items(const conversation *cv)
{
    static const char *const roles[] = {"user", "assistant", "system", NULL};
    static const char *const statuses[] = {"completed", "in_progress", "incomplete", NULL};
    size_t n = 0;
    for (const item *it = cv->head; it; it = it->next, n++) {
        if (it->id[0] == '\0' || !utf8(it->id) || !utf8(it->role) || !utf8(it->status)) abort();
        if (!one_of(it->status, statuses)) abort();
        if (it->text && !utf8(it->text)) abort();
        if (it->type[0]) {
            if (strcmp(it->type, "function_call") != 0 && strcmp(it->type, "function_call_output") != 0) abort();
            if (!utf8(it->call_id) || (it->name && !utf8(it->name))) abort();
        } else if (!one_of(it->role, roles)) {
            abort();
        }
        for (const item *o = cv->head; o != it; o = o->next)
            if (strcmp(o->id, it->id) == 0) abort();
        if (it->next ? it->next->prev != it : cv->tail != it) abort();
    }
    if (n != cv->n) abort();
}

static int same_str(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

/* b is a with the items still in progress left out. */
static void same_settled(const conversation *a, const conversation *b)
{
    const item *y = b->head;
    for (const item *x = a->head; x; x = x->next) {
        if (strcmp(x->status, "in_progress") == 0) continue;
        if (y == NULL || strcmp(x->id, y->id) != 0 || strcmp(x->role, y->role) != 0 ||
            x->content != y->content || strcmp(x->status, y->status) != 0 || strcmp(x->type, y->type) != 0 ||
            strcmp(x->call_id, y->call_id) != 0 || !same_str(x->name, y->name))
            abort();
        /* A function item's text is never NULL once restored. */
        if (!same_str(x->text, y->text)) abort();
        y = y->next;
    }
    if (y != NULL) abort();
}

static void check_prompts(const conversation *cv, const char *instructions)
{
    size_t n = 0;
    vx_message *m = conv_messages(cv, instructions, &n);
    if (m == NULL) abort();
    for (size_t i = 0; i < n; i++)
        if (!m[i].role || !m[i].content || !utf8(m[i].role) || !utf8(m[i].content)) abort();
    free(m);
    char *j = conv_messages_json(cv, instructions);
    if (j) {
        json_t *o = json_loads(j, 0, NULL);
        if (!json_is_array(o)) abort();
        json_decref(o);
        free(j);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    conversation cv = {0}, back = {0};
    char *instr = strdup("default instructions"), *voice = strdup("alloy");
    char *instr2 = NULL, *voice2 = NULL;
    if (instr == NULL || voice == NULL) abort();

    if (persist_state_decode(data, size, &cv, &instr, &voice) != 0) {
        if (cv.n != 0 || cv.head != NULL || strcmp(instr, "default instructions") != 0 || strcmp(voice, "alloy") != 0)
            abort();
        goto done;
    }
    check_items(&cv);
    if (instr == NULL || voice == NULL) abort(); /* only when memory ran out */
    check_prompts(&cv, instr);

    char *text = persist_state_encode(&cv, "sess_fuzz", instr, voice);
    if (text == NULL) abort();
    json_t *o = json_loads(text, 0, NULL);
    if (!json_is_object(o)) abort();
    json_decref(o);
    if (persist_state_decode(text, strlen(text), &back, &instr2, &voice2) != 0) abort();
    same_settled(&cv, &back);
    if (!same_str(instr, instr2) || !same_str(voice, voice2)) abort();
    free(text);

done:
    conv_free(&cv);
    conv_free(&back);
    free(instr);
    free(voice);
    free(instr2);
    free(voice2);
    return 0;
}
