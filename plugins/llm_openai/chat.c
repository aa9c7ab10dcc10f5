/*
 * chat: the reading of a chat completion answer (see chat.h).
 */
#include <stdint.h>
#include <string.h>

#include "chat.h"
#include "oai_client.h"

#define CHAT_PLUGIN "llm_openai"

static uint32_t chat_count(const json_t *o, const char *key) {
    json_int_t v = json_integer_value(json_object_get(o, key));
    return v < 0 ? 0 : v > UINT32_MAX ? UINT32_MAX : (uint32_t)v;
}

/* An error object where a chunk was expected (vLLM and OpenAI report
 * failures after the 200 this way). */
static int chat_stream_error(const json_t *j, vx_error *err) {
    const json_t *code = json_object_get(json_object_get(j, "error"), "code");
    const char *m = oai_error_message(j);

    if (!code) code = json_object_get(j, "code");
    memset(err, 0, sizeof(*err));
    if (json_is_integer(code) && json_integer_value(code) >= 400 &&
        json_integer_value(code) <= 599)
        oai_status_error(err, (long)json_integer_value(code));
    else
        err->code = VX_EUNAVAIL, err->retryable = 1;
    snprintf(err->msg, sizeof(err->msg), CHAT_PLUGIN ": error in the stream: %s",
             m ? m : "(no message)");
    return err->code;
}

/* One chat.completion.chunk (or, whole, a chat.completion). */
static int chat_chunk(chat_answer *a, const json_t *j, int whole, vx_error *err) {
    const json_t *e = json_object_get(j, "error"), *u = json_object_get(j, "usage");
    const json_t *ch = json_object_get(j, "choices"), *c0, *msg, *txt, *fr, *tc;
    const char *obj = json_string_value(json_object_get(j, "object"));

    if (!json_is_object(j)) {
        oai_seterr(err, VX_EPROTO, 0, 0, CHAT_PLUGIN ": a stream event is not a JSON object");
        return VX_EPROTO;
    }
    if ((e && !json_is_null(e)) || (obj && strcmp(obj, "error") == 0))
        return chat_stream_error(j, err);
    if (json_is_object(u)) {
        a->usage.prompt_tokens = chat_count(u, "prompt_tokens");
        a->usage.completion_tokens = chat_count(u, "completion_tokens");
        a->has_usage = 1;
    }
    if (!json_is_array(ch) || json_array_size(ch) == 0) return 0; /* the usage chunk */
    c0 = json_array_get(ch, 0);
    msg = json_object_get(c0, whole ? "message" : "delta");
    txt = json_object_get(msg, "content"); /* may be absent or null */
    if (json_is_string(txt) && json_string_length(txt) > 0)
        a->ev.on_token(a->ev.user, json_string_value(txt), json_string_length(txt));
    tc = json_object_get(msg, "tool_calls"); /* absent, null or [] without calls */
    if (a->ev.on_tool && json_is_array(tc) &&
        tools_feed(&a->tools, tc, a->ev.on_tool, a->ev.user, err) != VX_OK)
        return err->code;
    fr = json_object_get(c0, "finish_reason");
    if (json_is_string(fr)) a->finished = 1;
    return 0;
}

int chat_event(chat_answer *a, const char *data, size_t len, vx_error *err) {
    json_error_t je;
    json_t *j;
    int rc;

    if (len == 6 && memcmp(data, "[DONE]", 6) == 0) return CHAT_DONE;
    if (!(j = json_loadb(data, len, 0, &je))) {
        oai_seterr(err, VX_EPROTO, 0, 0, CHAT_PLUGIN ": unparseable stream event: %s", je.text);
        return VX_EPROTO;
    }
    rc = chat_chunk(a, j, 0, err);
    json_decref(j);
    return rc;
}

int chat_whole(chat_answer *a, const char *body, size_t len, vx_error *err) {
    json_error_t je;
    json_t *j = json_loadb(body, len, 0, &je);
    int rc;

    if (!j) {
        oai_seterr(err, VX_EPROTO, 0, 0, CHAT_PLUGIN ": unparseable answer: %s", je.text);
        return VX_EPROTO;
    }
    rc = chat_chunk(a, j, 1, err);
    json_decref(j);
    return rc;
}

int chat_finish(const chat_answer *a, vx_error *err) {
    return tools_finish(&a->tools, err);
}

void chat_answer_free(chat_answer *a) {
    tools_stream_free(&a->tools);
}
