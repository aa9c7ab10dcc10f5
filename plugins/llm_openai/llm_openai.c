/*
 * llm_openai: chat completions from any OpenAI-compatible server (OpenAI,
 * vLLM, llama.cpp server, Ollama's /v1), streamed.
 *
 * A generation is one POST {base_url}/chat/completions with "stream": true.
 * The answer arrives as server-sent events, each a chat.completion.chunk:
 * the text is in choices[0].delta.content (absent, null or "" in role-only
 * and final chunks), the end in choices[0].finish_reason, the token counts
 * in "usage" (a last chunk with empty choices for OpenAI and vLLM, the
 * finish chunk for llama.cpp), and "data: [DONE]" closes the stream. Every
 * content delta becomes one on_token; on_done follows [DONE], or the clean
 * end of a stream that had a finish_reason but no [DONE]. A server that
 * ignores "stream" and answers one application/json completion is accepted
 * too (one token, then on_done).
 *
 * Tools (ABI 1.3). When the host offers functions (params->tools_json, a
 * non-empty array) and its events can take calls (on_tool_call), the
 * request carries them as "tools", converted to the chat-completions shape,
 * and tool_choice mapped (tools.h); params->messages_json, when set, is sent
 * as "messages" in place of msgs[], with system_prompt applied the same way.
 * Calls stream in choices[0].delta.tool_calls[] beside or instead of text
 * and go out through on_tool_call, fragment by fragment (tools.h says how
 * the servers' styles are reconciled); finish_reason "tool_calls" then ends
 * the answer as any other. Without tools offered the request is built
 * exactly as before ABI 1.3. A host whose events end before on_tool_call
 * (or leave it NULL) is never offered tools, and a call a server sends
 * anyway is dropped: such a generation ends with on_done and the text
 * alone. Params older than 1.3 read as "no tools, no messages_json".
 *
 * Threads: the instance's oai_client runs every request on its driver
 * thread, which delivers all events of a stream; close() waits for the
 * driver to let go of the request (see oai_client.h).
 */
#include <stdlib.h>
#include <math.h>
#include <string.h>
#include <strings.h>

#include "chat.h"
#include "oai_client.h"
#include "sse.h"
#include "tools.h"

#define LLM_VERSION "1.0.0"
#define LLM_NAME "llm_openai"
/* A single event or a whole non-streamed answer above this is not a chat
 * completion any more. */
#define LLM_EVENT_MAX (4u << 20)

static const vx_config_key llm_config[] = {
    OAI_CONFIG_KEYS("gpt-4o-mini", "60s"),
    {"temperature", VX_CFG_FLOAT, "0.7",
     "sampling temperature; negative sends none (reasoning models accept only their own); "
     "a request's own temperature wins",
     -1, 2, NULL, 0},
    {"max_tokens", VX_CFG_INT, "0",
     "cap on the reply's tokens (0: none sent); a request's own limit wins", 0, 1000000, NULL,
     0},
    {"system_prompt", VX_CFG_STRING, "",
     "replaces the conversation's system message, or adds one; empty keeps the host's", 0,
     65536, NULL, 0},
    {"include_usage", VX_CFG_BOOL, "true",
     "ask for token counts (stream_options.include_usage); turn off for a server that "
     "rejects the field",
     0, 0, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

typedef struct llm_inst {
    const vx_host_api *api;
    vx_host *h;
    oai_conf cf;
    double temperature; /* < 0: not sent */
    long max_tokens;    /* 0: not sent */
    char *system_prompt;
    int include_usage;
    oai_client *client;
} llm_inst;

/* One generation. After start, only the driver thread touches it until
 * close() has stopped the request. */
struct vx_stream {
    llm_inst *in;
    vx_llm_events ev;
    oai_call *call;
    sse_parser sse;
    int mode_known; /* the Content-Type was looked at */
    int whole;      /* application/json: one completion, buffered in jbuf */
    char *jbuf;
    size_t jlen;
    int ended;    /* on_done or on_error was delivered */
    chat_answer chat; /* what the answer said so far (chat.h) */
    vx_error err; /* why an event was refused */
};

/* ---------------------------------------------------------------- events */

static void llm_fail(vx_stream *s, const vx_error *e) {
    s->ended = 1;
    s->ev.on_error(s->ev.user, e);
}

/* The answer is complete: on_done, or on_error when a tool call of it
 * never got a name (nothing of that call reached the host). */
static void llm_done(vx_stream *s) {
    if (chat_finish(&s->chat, &s->err) != VX_OK) {
        llm_fail(s, &s->err);
        return;
    }
    s->ended = 1;
    s->ev.on_done(s->ev.user, s->chat.has_usage ? &s->chat.usage : NULL);
}

/* chat_events.on_token: a piece of text, to the host. */
static void llm_token(void *ctx, const char *text, size_t len) {
    vx_stream *s = ctx;

    s->ev.on_token(s->ev.user, text, len);
}

/* tools_emit_fn: one fragment of a call, to the host. */
static void llm_tool(void *ctx, uint32_t index, const char *id, const char *name,
                     const char *args, size_t len) {
    vx_stream *s = ctx;

    s->ev.on_tool_call(s->ev.user, index, id, name, args, len);
}

/* The data of one server-sent event. */
static int llm_event(void *ctx, const char *data, size_t len) {
    vx_stream *s = ctx;
    int rc;

    if (s->ended) return 0;
    if ((rc = chat_event(&s->chat, data, len, &s->err)) == CHAT_DONE) {
        llm_done(s);
        return 0;
    }
    return rc;
}

/* Map a parser failure to an error in s->err. */
static int llm_parse_rc(vx_stream *s, int rc) {
    if (rc == SSE_ETOOBIG)
        oai_seterr(&s->err, VX_EPROTO, 0, 0, LLM_NAME ": a stream event exceeds %u bytes",
                   LLM_EVENT_MAX);
    else if (rc == SSE_ENOMEM)
        oai_seterr(&s->err, VX_ENOMEM, 1, 0, LLM_NAME ": out of memory reading the stream");
    return s->err.code;
}

static int llm_body(void *ctx, const char *p, size_t n, vx_error *err) {
    vx_stream *s = ctx;
    int rc;

    if (s->ended) return 0; /* after [DONE]: let the transfer finish quietly */
    if (!s->mode_known) {
        s->mode_known = 1;
        s->whole = strncasecmp(oai_call_content_type(s->call), "application/json", 16) == 0;
    }
    if (s->whole) {
        char *b;
        if (s->jlen + n > LLM_EVENT_MAX) {
            oai_seterr(err, VX_EPROTO, 0, 0, LLM_NAME ": the answer exceeds %u bytes",
                       LLM_EVENT_MAX);
            return VX_EPROTO;
        }
        if (!(b = realloc(s->jbuf, s->jlen + n))) {
            oai_seterr(err, VX_ENOMEM, 1, 0, LLM_NAME ": out of memory reading the answer");
            return VX_ENOMEM;
        }
        memcpy(b + s->jlen, p, n);
        s->jbuf = b;
        s->jlen += n;
        return 0;
    }
    if ((rc = sse_feed(&s->sse, p, n, llm_event, s)) != 0) {
        llm_parse_rc(s, rc);
        *err = s->err;
        return s->err.code;
    }
    return 0;
}

/* A non-streamed answer, complete. */
static void llm_whole(vx_stream *s) {
    if (chat_whole(&s->chat, s->jbuf ? s->jbuf : "", s->jlen, &s->err) != 0)
        llm_fail(s, &s->err);
    else
        llm_done(s);
}

static void llm_end(void *ctx, const vx_error *e) {
    vx_stream *s = ctx;
    int rc;

    if (s->ended) return; /* on_done went out at [DONE] */
    if (e->code != VX_OK) {
        llm_fail(s, e);
        return;
    }
    if (s->whole) {
        llm_whole(s);
        return;
    }
    rc = sse_finish(&s->sse, llm_event, s); /* a last event without its blank line */
    if (s->ended) return;
    if (rc != 0) {
        llm_parse_rc(s, rc);
        llm_fail(s, &s->err);
    } else if (s->chat.finished) {
        llm_done(s); /* no [DONE], but the answer said it was complete */
    } else {
        oai_seterr(&s->err, VX_EUNAVAIL, 1, 0,
                   LLM_NAME ": the stream ended before the answer was complete");
        llm_fail(s, &s->err);
    }
}

static const oai_call_ops llm_ops = {llm_body, llm_end};

/* ---------------------------------------------------------------- requests */

static int llm_add_message(json_t *arr, const char *role, const char *content) {
    json_t *m = json_object();

    if (!m || json_array_append_new(arr, m) != 0) return -1;
    return json_object_set_new(m, "role", json_string(role)) ||
                   json_object_set_new(m, "content", json_string(content ? content : ""))
               ? -1
               : 0;
}

/* The messages array built from msgs[]. NULL with err filled: VX_EINVAL for
 * a message without a role or with text that is not UTF-8, VX_ENOMEM. */
static json_t *llm_messages(llm_inst *in, const vx_message *msgs, size_t n, vx_error *err) {
    const char *sys = in->system_prompt;
    json_t *arr = json_array();
    int replaced = 0;
    size_t i;

    for (i = 0; i < n && msgs[i].role; i++)
        ;
    if (i < n) {
        json_decref(arr);
        oai_seterr(err, VX_EINVAL, 0, 0, LLM_NAME ": message %zu has no role", i);
        return NULL;
    }
    if (!arr) goto oom;
    if (*sys) {
        /* system_prompt takes the place of the first system message, or
         * comes first when the conversation has none. */
        for (i = 0; i < n && strcmp(msgs[i].role, "system") != 0; i++)
            ;
        if (i == n && llm_add_message(arr, "system", sys) != 0) goto oom;
    }
    for (i = 0; i < n; i++) {
        const char *content = msgs[i].content;
        if (*sys && !replaced && strcmp(msgs[i].role, "system") == 0) content = sys, replaced = 1;
        if (llm_add_message(arr, msgs[i].role, content) != 0) {
            json_decref(arr);
            oai_seterr(err, VX_EINVAL, 0, 0, LLM_NAME ": message %zu is not valid UTF-8", i);
            return NULL;
        }
    }
    return arr;
oom:
    json_decref(arr);
    oai_seterr(err, VX_ENOMEM, 1, 0, LLM_NAME ": out of memory building the request");
    return NULL;
}

/* The messages array from params->messages_json, with system_prompt applied
 * as llm_messages applies it. NULL with err filled: VX_EINVAL when the text
 * is not a JSON array of objects with a string "role", VX_ENOMEM. */
static json_t *llm_messages_json(llm_inst *in, const char *text, vx_error *err) {
    const char *sys = in->system_prompt;
    json_error_t je;
    json_t *arr = json_loads(text, 0, &je), *m, *first = NULL;
    size_t i;

    if (!json_is_array(arr)) {
        oai_seterr(err, VX_EINVAL, 0, 0, LLM_NAME ": messages_json is not a JSON array%s%s",
                   arr ? "" : ": ", arr ? "" : je.text);
        json_decref(arr);
        return NULL;
    }
    json_array_foreach(arr, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (!role) {
            oai_seterr(err, VX_EINVAL, 0, 0, LLM_NAME ": messages_json[%zu] has no role", i);
            json_decref(arr);
            return NULL;
        }
        if (!first && strcmp(role, "system") == 0) first = m;
    }
    if (*sys) {
        if (first
                ? json_object_set_new(first, "content", json_string(sys)) != 0
                : json_array_insert_new(
                      arr, 0, json_pack("{s:s, s:s}", "role", "system", "content", sys)) != 0) {
            json_decref(arr);
            oai_seterr(err, VX_ENOMEM, 1, 0, LLM_NAME ": out of memory building the request");
            return NULL;
        }
    }
    return arr;
}

/* The request body. tools: offer params' tools (the host can take calls).
 * NULL with err filled: VX_EINVAL for a message, messages_json or
 * tools_json the plugin cannot use, VX_ENOMEM. */
static json_t *llm_request(llm_inst *in, const vx_message *msgs, size_t n,
                           const vx_llm_params *p, int tools, vx_error *err) {
    int v13 = p->struct_size >= VX_LLM_PARAMS_SIZE_1_3;
    double temp = p->temperature >= 0 ? p->temperature : in->temperature;
    long max = p->max_tokens > 0 ? p->max_tokens : in->max_tokens;
    json_t *body = NULL, *arr = NULL, *tl = NULL, *choice = NULL, *opt;
    int bad;

    if (v13 && tools && p->tools_json && tools_convert(p->tools_json, &tl, err) != VX_OK)
        return NULL;
    arr = v13 && p->messages_json ? llm_messages_json(in, p->messages_json, err)
                                  : llm_messages(in, msgs, n, err);
    if (!arr) {
        json_decref(tl);
        return NULL;
    }
    /* tool_choice means nothing without tools (and servers refuse it). */
    if (tl) choice = tools_choice(p->tool_choice);
    bad = !(body = json_object()) ||
          json_object_set_new(body, "model", json_string(in->cf.model)) ||
          json_object_set(body, "messages", arr) ||
          json_object_set_new(body, "stream", json_true());
    if (!bad && in->include_usage)
        bad = !(opt = json_object()) || json_object_set_new(body, "stream_options", opt) ||
              json_object_set_new(opt, "include_usage", json_true());
    if (!bad && temp >= 0) bad = json_object_set_new(body, "temperature", json_real(temp));
    if (!bad && max > 0) bad = json_object_set_new(body, "max_tokens", json_integer(max));
    if (!bad && tl) bad = json_object_set(body, "tools", tl);
    if (!bad && tl && p->tool_choice && *p->tool_choice)
        bad = !choice || json_object_set(body, "tool_choice", choice);
    json_decref(arr);
    json_decref(tl);
    json_decref(choice);
    if (bad) {
        json_decref(body);
        oai_seterr(err, VX_ENOMEM, 1, 0, LLM_NAME ": out of memory building the request");
        return NULL;
    }
    return body;
}

/* ---------------------------------------------------------------- vtable */

static void llm_free(vx_stream *s) {
    sse_free(&s->sse);
    chat_answer_free(&s->chat);
    free(s->jbuf);
    free(s);
}

/* Fails with VX_EINVAL (missing callbacks, a bad message, messages_json or
 * tools_json), VX_ENOMEM. Every upstream failure arrives through on_error. */
static int llm_generate(void *inst, const vx_message *msgs, size_t n,
                        const vx_llm_params *params, const vx_llm_events *ev, vx_stream **out,
                        vx_error *err) {
    llm_inst *in = inst;
    vx_llm_params p = {.struct_size = sizeof(p), .temperature = -1};
    vx_llm_events e = {0};
    vx_stream *s = NULL;
    json_t *body = NULL;
    int rc;

    *out = NULL;
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!ev || ev->struct_size < VX_LLM_EVENTS_SIZE_1_3) e.on_tool_call = NULL;
    if (!e.on_token || !e.on_done || !e.on_error || (n && !msgs)) {
        oai_seterr(err, VX_EINVAL, 0, 0, LLM_NAME ": generate needs messages and all three events");
        return VX_EINVAL;
    }
    if (params)
        memcpy(&p, params, params->struct_size < sizeof(p) ? params->struct_size : sizeof(p));
    if (!(s = calloc(1, sizeof(*s)))) {
        oai_seterr(err, VX_ENOMEM, 1, 0, LLM_NAME ": out of memory starting a generation");
        return VX_ENOMEM;
    }
    s->in = in;
    s->ev = e;
    s->chat.ev = (chat_events){s, llm_token, e.on_tool_call ? llm_tool : NULL};
    sse_init(&s->sse, LLM_EVENT_MAX);
    if (!(body = llm_request(in, msgs, n, &p, e.on_tool_call != NULL, err))) {
        rc = err->code;
        goto fail;
    }
    if ((rc = oai_call_new(in->client, "/chat/completions", &llm_ops, s, &s->call, err)) != VX_OK ||
        (rc = oai_call_header(s->call, "Accept: text/event-stream", err)) != VX_OK ||
        (rc = oai_call_json(s->call, body, err)) != VX_OK)
        goto fail;
    json_decref(body);
    *out = s;
    oai_call_start(s->call);
    return VX_OK;
fail:
    json_decref(body);
    oai_call_close(s->call);
    llm_free(s);
    return rc;
}

static void llm_cancel(vx_stream *s) {
    oai_call_cancel(s->call);
}

static void llm_close(vx_stream *s) {
    oai_call_close(s->call);
    llm_free(s);
}

static const vx_llm_vtable llm_vtable = {
    .struct_size = sizeof(vx_llm_vtable),
    .generate = llm_generate,
    .cancel = llm_cancel,
    .close = llm_close,
};

/* ---------------------------------------------------------------- lifecycle */

static void llm_shutdown(void *inst) {
    llm_inst *in = inst;

    if (!in) return;
    oai_client_free(in->client);
    oai_conf_free(&in->cf);
    free(in->system_prompt);
    free(in);
}

/* Fails with VX_EINVAL naming a key whose value does not parse (the host
 * validated them, so only a direct caller gets there), VX_ENOMEM. */
static int llm_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                    vx_error *err) {
    llm_inst *in = calloc(1, sizeof(*in));
    const char *bad = NULL;
    char desc[512];
    int rc;

    if (!in) {
        oai_seterr(err, VX_ENOMEM, 0, 0, LLM_NAME ": out of memory at init");
        return VX_ENOMEM;
    }
    in->api = host;
    in->h = h;
    if ((rc = oai_conf_load(&in->cf, LLM_NAME, host, h, cfg, llm_config, err)) != VX_OK) {
        free(in);
        return rc;
    }
    if (host->config_float(h, "temperature", &in->temperature) != VX_OK ||
        !isfinite(in->temperature))
        bad = "temperature";
    else if (oai_cfg_long(host, h, "max_tokens", &in->max_tokens) != 0 || in->max_tokens < 0)
        bad = "max_tokens";
    else if (host->config_bool(h, "include_usage", &in->include_usage) != VX_OK)
        bad = "include_usage";
    if (bad) {
        oai_seterr(err, VX_EINVAL, 0, 0, LLM_NAME ": bad value for %s: '%s'", bad,
                   oai_cfg(cfg, llm_config, bad));
        llm_shutdown(in);
        return VX_EINVAL;
    }
    if (!(in->system_prompt = strdup(oai_cfg(cfg, llm_config, "system_prompt")))) {
        oai_seterr(err, VX_ENOMEM, 0, 0, LLM_NAME ": out of memory at init");
        llm_shutdown(in);
        return VX_ENOMEM;
    }
    if ((rc = oai_client_new(host, h, &in->cf, &in->client, err)) != VX_OK) {
        llm_shutdown(in);
        return rc;
    }
    oai_conf_describe(&in->cf, desc, sizeof(desc));
    host->log(h, VX_LOG_INFO, "%s", desc);
    *inst = in;
    return VX_OK;
}

static int llm_health(void *inst, char *buf, size_t len) {
    return oai_client_health(((llm_inst *)inst)->client, buf, len);
}

static const vx_plugin_info llm_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_LLM,
    .name = LLM_NAME,
    .version = LLM_VERSION,
    .description = "streamed chat completions from an OpenAI-compatible server "
                   "(OpenAI, vLLM, llama.cpp, Ollama)",
    .caps = VX_CAP_STREAMING_OUTPUT | VX_CAP_NETWORK,
    .config = llm_config,
    .init = llm_init,
    .shutdown = llm_shutdown,
    .llm = &llm_vtable,
    .health = llm_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* The settings are read with the typed config getters (1.6). */
    if (!oai_host_ok(host)) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, LLM_NAME " needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &llm_info;
}
