/*
 * tools: function calling over chat completions (see tools.h).
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oai_client.h"
#include "tools.h"

#define TOOLS_PLUGIN "llm_openai"

struct tools_call {
    int has_srv;    /* the server numbered the call */
    json_int_t srv; /* its number there */
    char *id;       /* the server's id, or a made-up one once started */
    int srv_id;     /* id came from the server */
    char *name;
    char *pending; /* arguments that came before the name */
    size_t pending_len;
    int started; /* the first fragment went out */
};

/* Made-up call ids are unique in the process. */
static atomic_ulong tools_ids;

/* ---------------------------------------------------------------- request */

/* One entry of tools_json as a new chat-completions tool, or NULL with err
 * filled. */
static json_t *tools_entry(const json_t *t, size_t i, vx_error *err) {
    const json_t *fn = json_object_get(t, "function");
    const char *type = json_string_value(json_object_get(t, "type"));
    const char *name = json_string_value(json_object_get(t, "name"));
    const json_t *v;
    json_t *f, *out;

    if (!json_is_object(t)) {
        oai_seterr(err, VX_EINVAL, 0, 0, TOOLS_PLUGIN ": tool %zu is not a JSON object", i);
        return NULL;
    }
    if (type && strcmp(type, "function") != 0) {
        oai_seterr(err, VX_EINVAL, 0, 0,
                   TOOLS_PLUGIN ": tool %zu is of type '%.64s'; only functions can be offered",
                   i, type);
        return NULL;
    }
    if (json_is_object(fn)) {
        /* Already in the chat-completions shape. */
        name = json_string_value(json_object_get(fn, "name"));
        if (!name || !*name) goto noname;
        if (!(out = json_deep_copy(t))) goto oom;
        if (!type && json_object_set_new(out, "type", json_string("function")) != 0) {
            json_decref(out);
            goto oom;
        }
        return out;
    }
    if (!name || !*name) goto noname;
    if (!(out = json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", name)))
        goto oom;
    f = json_object_get(out, "function");
    if ((json_is_string(v = json_object_get(t, "description")) &&
         json_object_set(f, "description", (json_t *)v) != 0) ||
        (json_is_object(v = json_object_get(t, "parameters")) &&
         json_object_set(f, "parameters", (json_t *)v) != 0) ||
        (json_is_boolean(v = json_object_get(t, "strict")) &&
         json_object_set(f, "strict", (json_t *)v) != 0)) {
        json_decref(out);
        goto oom;
    }
    return out;
noname:
    oai_seterr(err, VX_EINVAL, 0, 0, TOOLS_PLUGIN ": tool %zu has no function name", i);
    return NULL;
oom:
    oai_seterr(err, VX_ENOMEM, 1, 0, TOOLS_PLUGIN ": out of memory converting the tools");
    return NULL;
}

int tools_convert(const char *tools_json, json_t **out, vx_error *err) {
    json_error_t je;
    json_t *in = json_loads(tools_json, 0, &je), *arr = NULL, *t, *c;
    size_t i;
    int rc = VX_OK;

    *out = NULL;
    if (!json_is_array(in)) {
        oai_seterr(err, VX_EINVAL, 0, 0, TOOLS_PLUGIN ": tools_json is not a JSON array%s%s",
                   in ? "" : ": ", in ? "" : je.text);
        rc = VX_EINVAL;
        goto done;
    }
    if (json_array_size(in) == 0) goto done;
    if (!(arr = json_array())) {
        oai_seterr(err, VX_ENOMEM, 1, 0, TOOLS_PLUGIN ": out of memory converting the tools");
        rc = VX_ENOMEM;
        goto done;
    }
    json_array_foreach(in, i, t) {
        if (!(c = tools_entry(t, i, err)) || json_array_append_new(arr, c) != 0) {
            if (c)
                oai_seterr(err, VX_ENOMEM, 1, 0,
                           TOOLS_PLUGIN ": out of memory converting the tools");
            rc = err->code;
            json_decref(arr);
            arr = NULL;
            goto done;
        }
    }
    *out = arr;
done:
    json_decref(in);
    return rc;
}

json_t *tools_choice(const char *choice) {
    if (!choice || !*choice) return NULL;
    if (strcmp(choice, "auto") == 0 || strcmp(choice, "none") == 0 ||
        strcmp(choice, "required") == 0)
        return json_string(choice);
    return json_pack("{s:s, s:{s:s}}", "type", "function", "function", "name", choice);
}

/* ---------------------------------------------------------------- answer */

/* The call a fragment belongs to, or NULL when it starts a new one (see the
 * rules in tools.h). */
static tools_call *tools_find(tools_stream *ts, const json_t *idx, const char *id,
                              const char *name) {
    tools_call *last = ts->n ? &ts->calls[ts->n - 1] : NULL;

    if (json_is_integer(idx)) {
        json_int_t v = json_integer_value(idx);
        for (size_t i = ts->n; i-- > 0;) {
            tools_call *c = &ts->calls[i];
            if (!c->has_srv || c->srv != v) continue;
            /* The same number with another id: a server that numbers every
             * call of a parallel set 0 (Ollama, ollama#15457). */
            if (id && c->srv_id && strcmp(c->id, id) != 0) return NULL;
            return c;
        }
        return NULL;
    }
    if (!last) return NULL;
    if (id) return last->srv_id && strcmp(last->id, id) == 0 ? last : NULL;
    return name ? NULL : last;
}

static tools_call *tools_add(tools_stream *ts, const json_t *idx, vx_error *err) {
    tools_call *c;

    if (ts->n >= TOOLS_MAX_CALLS) {
        oai_seterr(err, VX_EPROTO, 0, 0, TOOLS_PLUGIN ": more than %d tool calls in one answer",
                   TOOLS_MAX_CALLS);
        return NULL;
    }
    if (!(c = realloc(ts->calls, (ts->n + 1) * sizeof(*c)))) {
        oai_seterr(err, VX_ENOMEM, 1, 0, TOOLS_PLUGIN ": out of memory reading a tool call");
        return NULL;
    }
    ts->calls = c;
    c = &ts->calls[ts->n++];
    memset(c, 0, sizeof(*c));
    if (json_is_integer(idx)) c->has_srv = 1, c->srv = json_integer_value(idx);
    return c;
}

/* Send the first fragment of c: what was held back, then args. */
static int tools_start(tools_stream *ts, tools_call *c, const char *args, size_t len,
                       tools_emit_fn emit, void *ctx, vx_error *err) {
    char made[32], *buf = NULL;

    if (!c->id) {
        snprintf(made, sizeof(made), "call_vx%lu", atomic_fetch_add(&tools_ids, 1) + 1);
        if (!(c->id = strdup(made))) goto oom;
    }
    if (c->pending_len) {
        if (!(buf = malloc(c->pending_len + len + 1))) goto oom;
        memcpy(buf, c->pending, c->pending_len);
        memcpy(buf + c->pending_len, args, len);
        args = buf;
        len += c->pending_len;
    }
    c->started = 1;
    emit(ctx, (uint32_t)(c - ts->calls), c->id, c->name, args, len);
    free(buf);
    free(c->pending);
    c->pending = NULL;
    c->pending_len = 0;
    return VX_OK;
oom:
    oai_seterr(err, VX_ENOMEM, 1, 0, TOOLS_PLUGIN ": out of memory reading a tool call");
    return VX_ENOMEM;
}

/* Keep args until the call's name arrives. */
static int tools_hold(tools_call *c, const char *args, size_t len, vx_error *err) {
    char *p;

    if (!len) return VX_OK;
    if (c->pending_len + len > TOOLS_MAX_PENDING) {
        oai_seterr(err, VX_EPROTO, 0, 0,
                   TOOLS_PLUGIN ": more than %u bytes of tool call arguments before its name",
                   TOOLS_MAX_PENDING);
        return VX_EPROTO;
    }
    if (!(p = realloc(c->pending, c->pending_len + len))) {
        oai_seterr(err, VX_ENOMEM, 1, 0, TOOLS_PLUGIN ": out of memory reading a tool call");
        return VX_ENOMEM;
    }
    memcpy(p + c->pending_len, args, len);
    c->pending = p;
    c->pending_len += len;
    return VX_OK;
}

/* One entry of a tool_calls array. */
static int tools_fragment(tools_stream *ts, const json_t *f, size_t i, tools_emit_fn emit,
                          void *ctx, vx_error *err) {
    const json_t *idx = json_object_get(f, "index"), *fn = json_object_get(f, "function");
    const json_t *a = json_object_get(fn, "arguments");
    const char *id = json_string_value(json_object_get(f, "id"));
    const char *name = json_string_value(json_object_get(fn, "name"));
    const char *args = "";
    char *dumped = NULL;
    size_t len = 0;
    tools_call *c;
    int rc = VX_OK;

    if (!json_is_object(f)) {
        oai_seterr(err, VX_EPROTO, 0, 0, TOOLS_PLUGIN ": tool_calls[%zu] is not an object", i);
        return VX_EPROTO;
    }
    if (id && !*id) id = NULL;
    if (name && !*name) name = NULL;
    if (json_is_string(a)) {
        args = json_string_value(a);
        len = json_string_length(a);
    } else if (a && !json_is_null(a)) {
        if (!(dumped = json_dumps(a, JSON_COMPACT | JSON_ENCODE_ANY))) goto oom;
        args = dumped;
        len = strlen(dumped);
    }
    if (!(c = tools_find(ts, idx, id, name)) && !(c = tools_add(ts, idx, err))) {
        rc = err->code;
        goto done;
    }
    if (id && !c->id && !c->started) {
        if (!(c->id = strdup(id))) goto oom;
        c->srv_id = 1;
    }
    if (name && !c->name && !(c->name = strdup(name))) goto oom;
    if (c->started) {
        if (len) emit(ctx, (uint32_t)(c - ts->calls), NULL, NULL, args, len);
    } else if (c->name) {
        rc = tools_start(ts, c, args, len, emit, ctx, err);
    } else {
        rc = tools_hold(c, args, len, err);
    }
done:
    free(dumped);
    return rc;
oom:
    free(dumped);
    oai_seterr(err, VX_ENOMEM, 1, 0, TOOLS_PLUGIN ": out of memory reading a tool call");
    return VX_ENOMEM;
}

int tools_feed(tools_stream *ts, const json_t *tool_calls, tools_emit_fn emit, void *ctx,
               vx_error *err) {
    const json_t *f;
    size_t i;
    int rc;

    json_array_foreach(tool_calls, i, f) {
        if ((rc = tools_fragment(ts, f, i, emit, ctx, err)) != VX_OK) return rc;
    }
    return VX_OK;
}

int tools_finish(const tools_stream *ts, vx_error *err) {
    for (size_t i = 0; i < ts->n; i++) {
        if (!ts->calls[i].started) {
            oai_seterr(err, VX_EPROTO, 0, 0,
                       TOOLS_PLUGIN ": tool call %zu of the answer has no function name", i);
            return VX_EPROTO;
        }
    }
    return VX_OK;
}

size_t tools_count(const tools_stream *ts) {
    return ts->n;
}

void tools_stream_free(tools_stream *ts) {
    for (size_t i = 0; i < ts->n; i++) {
        free(ts->calls[i].id);
        free(ts->calls[i].name);
        free(ts->calls[i].pending);
    }
    free(ts->calls);
    ts->calls = NULL;
    ts->n = 0;
}
