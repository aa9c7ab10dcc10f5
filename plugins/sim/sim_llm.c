/*
 * sim LLM: answers with the configured reply, or echoes the last user
 * message, one word per token; with tools offered it may call one instead.
 *
 * A token is a word with the whitespace that follows it ("You ", "said: "),
 * the first one also carrying any leading whitespace, so the tokens
 * concatenate to exactly the reply. The first token comes after latency,
 * each next one token_delay later (each delay plus its own jitter), and
 * on_done follows the last token at once.
 *
 * Tools (ABI 1.3), decided in this order:
 *   1. tool_choice "required" forces a call of tool_call's function when it
 *      is offered, else of the first tool offered; tool_choice naming an
 *      offered function forces a call of that one (generate fails with
 *      VX_EINVAL when it names one not offered). Forced calls happen
 *      whatever the last message is, as with OpenAI.
 *   2. The last message of messages_json is a tool result: the answer is
 *      "Tool said: <its content>." ("Tool said nothing." when empty).
 *   3. tool_call is set, its function is offered, tool_choice is auto (or
 *      unset), the last message is the user's and contains tool_trigger
 *      (any, when empty): the answer is that call.
 *   4. Otherwise the answer is text as without tools.
 * A call is index 0 with id "call_sim<N>" (N: the call's number in the
 * instance, so the same call sequence gives the same ids) and the
 * arguments (tool_call's, or {} for another function) cut into 3
 * fragments at UTF-8 character boundaries (the first may be empty), timed
 * as tokens; then on_done, with completion_tokens 3. max_tokens does not
 * cut a call. "Offered" needs a non-empty tools_json and events that can
 * take calls: a host whose vx_llm_events ends before on_tool_call (or
 * leaves it NULL) never gets one, and neither does one whose params end
 * before the 1.3 fields (messages_json is then ignored too).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "sim.h"

typedef struct sim_llm {
    struct vx_stream base;
    vx_llm_events ev;
    char *name;    /* the function called, or NULL: the answer is text */
    char *call_id; /* with name */
    char *reply;   /* the text, or the call's arguments */
    size_t *off;   /* token (or fragment) i is reply[off[i] .. off[i+1]) */
    size_t n_tok;  /* tokens to send (max_tokens applied) */
    size_t next;   /* next event: token next, or on_done when next == n_tok */
    size_t fail_idx; /* the event replaced by on_error, when the call fails */
    uint64_t due;  /* when the next event is due */
    vx_usage usage;
} sim_llm;

/* The answer: the reply, or "You said: <last user message>." */
static char *llm_answer(sim_inst *in, const vx_message *msgs, size_t n) {
    const char *c = NULL;
    size_t len;
    char *a;

    if (*in->reply) return strdup(in->reply);
    for (size_t i = n; i-- > 0;) {
        if (msgs[i].role && strcmp(msgs[i].role, "user") == 0) {
            c = msgs[i].content;
            break;
        }
    }
    if (c)
        while (isspace((unsigned char)*c)) c++;
    len = c ? strlen(c) : 0;
    while (len && isspace((unsigned char)c[len - 1])) len--;
    if (len == 0) return strdup("Hello.");
    if (!(a = malloc(len + sizeof("You said: ."))))
        return NULL;
    snprintf(a, len + sizeof("You said: ."), "You said: %.*s.", (int)len, c);
    return a;
}

/* ---------------------------------------------------------------- tools */

/* The name of a tool in the Realtime shape ({"name"}) or the
 * chat-completions one ({"function": {"name"}}), or NULL. */
static const char *llm_tool_name(const json_t *t) {
    const char *name = json_string_value(json_object_get(t, "name"));

    return name ? name
                : json_string_value(json_object_get(json_object_get(t, "function"), "name"));
}

static int llm_offered(const json_t *tools, const char *name) {
    const json_t *t;
    size_t i;

    json_array_foreach(tools, i, t) {
        if (strcmp(llm_tool_name(t), name) == 0) return 1;
    }
    return 0;
}

/* The text of a chat-completions message's content: a string, the "text"
 * of an array of parts, or the compact JSON of anything else. NULL when out
 * of memory. */
static char *llm_content(const json_t *m) {
    const json_t *c = json_object_get(m, "content"), *part;
    const char *t;
    char *out;
    size_t i, len = 0;

    if (json_is_string(c)) return strdup(json_string_value(c));
    if (!c || json_is_null(c)) return strdup("");
    if (!json_is_array(c)) return json_dumps(c, JSON_COMPACT | JSON_ENCODE_ANY);
    json_array_foreach(c, i, part) {
        if ((t = json_string_value(json_object_get(part, "text")))) len += strlen(t);
    }
    if (!(out = malloc(len + 1))) return NULL;
    *out = '\0';
    json_array_foreach(c, i, part) {
        if ((t = json_string_value(json_object_get(part, "text")))) strcat(out, t);
    }
    return out;
}

/* "Tool said: <text>." with text trimmed, or "Tool said nothing." */
static char *llm_tool_said(const char *text) {
    size_t len;
    char *a;

    while (isspace((unsigned char)*text)) text++;
    len = strlen(text);
    while (len && isspace((unsigned char)text[len - 1])) len--;
    if (len == 0) return strdup("Tool said nothing.");
    if (!(a = malloc(len + sizeof("Tool said: .")))) return NULL;
    snprintf(a, len + sizeof("Tool said: ."), "Tool said: %.*s.", (int)len, text);
    return a;
}

/* 1 when needle occurs in hay, ignoring ASCII case; "" occurs anywhere. */
static int llm_contains(const char *hay, const char *needle) {
    size_t n = strlen(needle);

    for (; hay && *hay; hay++)
        if (strncasecmp(hay, needle, n) == 0) return 1;
    return n == 0;
}

/* The last message is the user's and asks for tool_call (tool_trigger). */
static int llm_asks(sim_inst *in, const vx_message *msgs, size_t n, const json_t *conv) {
    const json_t *last = json_array_get(conv, json_array_size(conv) - 1);
    const char *role;
    char *text;
    int yes;

    if (!conv) {
        return n && msgs[n - 1].role && strcmp(msgs[n - 1].role, "user") == 0 &&
               llm_contains(msgs[n - 1].content ? msgs[n - 1].content : "", in->tool_trigger);
    }
    role = json_string_value(json_object_get(last, "role"));
    if (!role || strcmp(role, "user") != 0) return 0;
    if (!*in->tool_trigger) return 1;
    if (!(text = llm_content(last))) return 0;
    yes = llm_contains(text, in->tool_trigger);
    free(text);
    return yes;
}

/* What to answer: a call of *name with arguments *text, or (*name NULL) the
 * text *text (see the rules at the top). p is NULL for params older than
 * 1.3; can_call: the events have on_tool_call. Returns 0, VX_EINVAL (a
 * tools_json or messages_json that is not an array, a tool without a name,
 * tool_choice naming a function not offered) or VX_ENOMEM, with err
 * filled; nothing to free then. */
static int llm_decide(sim_inst *in, const vx_message *msgs, size_t n, const vx_llm_params *p,
                      int can_call, char **name, char **text, vx_error *err) {
    const char *choice = p ? p->tool_choice : NULL, *call = NULL, *role;
    json_t *tools = NULL, *conv = NULL, *last, *t;
    size_t i;
    int rc = VX_OK;

    *name = *text = NULL;
    if (p && p->tools_json && can_call) {
        tools = json_loads(p->tools_json, 0, NULL);
        if (!json_is_array(tools)) {
            sim_seterr(err, VX_EINVAL, 0, "sim: tools_json is not a JSON array");
            rc = VX_EINVAL;
            goto done;
        }
        json_array_foreach(tools, i, t) {
            if (!llm_tool_name(t)) {
                sim_seterr(err, VX_EINVAL, 0, "sim: tool %zu has no name", i);
                rc = VX_EINVAL;
                goto done;
            }
        }
        if (json_array_size(tools) == 0) {
            json_decref(tools);
            tools = NULL;
        }
    }
    if (p && p->messages_json) {
        conv = json_loads(p->messages_json, 0, NULL);
        if (!json_is_array(conv)) {
            sim_seterr(err, VX_EINVAL, 0, "sim: messages_json is not a JSON array");
            rc = VX_EINVAL;
            goto done;
        }
    }
    if (choice && (!*choice || strcmp(choice, "auto") == 0)) choice = NULL;
    last = json_array_get(conv, json_array_size(conv) - 1);
    role = json_string_value(json_object_get(last, "role"));
    if (tools && choice && strcmp(choice, "none") != 0) {
        if (strcmp(choice, "required") == 0) {
            call = in->tool_name && llm_offered(tools, in->tool_name)
                       ? in->tool_name
                       : llm_tool_name(json_array_get(tools, 0));
        } else if (llm_offered(tools, choice)) {
            call = choice;
        } else {
            sim_seterr(err, VX_EINVAL, 0,
                       "sim: tool_choice names '%.64s', which is not offered", choice);
            rc = VX_EINVAL;
            goto done;
        }
    } else if (role && strcmp(role, "tool") == 0) {
        char *said = llm_content(last);
        *text = said ? llm_tool_said(said) : NULL;
        free(said);
        if (!*text) goto oom;
    } else if (tools && !choice && in->tool_name && llm_offered(tools, in->tool_name) &&
               llm_asks(in, msgs, n, conv)) {
        call = in->tool_name;
    }
    if (call) {
        const char *args =
            in->tool_name && strcmp(call, in->tool_name) == 0 ? in->tool_args : "{}";
        if (!(*name = strdup(call)) || !(*text = strdup(args))) goto oom;
    } else if (!*text && !(*text = llm_answer(in, msgs, n))) {
        goto oom;
    }
done:
    json_decref(tools);
    json_decref(conv);
    return rc;
oom:
    free(*name);
    free(*text);
    *name = *text = NULL;
    sim_seterr(err, VX_ENOMEM, 1, "sim: out of memory starting a generation");
    rc = VX_ENOMEM;
    goto done;
}

/* Three fragments of a call's arguments, cut at UTF-8 character
 * boundaries near a third and two thirds of them. */
static int llm_fragments(const char *args, size_t **off) {
    size_t len = strlen(args), *o = malloc(4 * sizeof(*o));

    if (!o) return -1;
    o[0] = 0;
    o[3] = len;
    for (int k = 1; k <= 2; k++) {
        size_t at = len * (size_t)k / 3;
        while (at < len && ((unsigned char)args[at] & 0xc0) == 0x80) at++;
        o[k] = at < o[k - 1] ? o[k - 1] : at;
    }
    *off = o;
    return 0;
}

/* ---------------------------------------------------------------- text */

/* Token boundaries of text: a token starts at every word but the first.
 * Text without words is one token. Returns the token count, or -1 when out
 * of memory. */
static long llm_tokenize(const char *text, size_t **off) {
    size_t len = strlen(text), first = 0, n = 0;
    size_t *o = malloc((sim_count_words(text) + 2) * sizeof(*o));

    if (!o) return -1;
    while (first < len && isspace((unsigned char)text[first])) first++;
    o[n++] = 0;
    for (size_t i = first + 1; i < len; i++)
        if (isspace((unsigned char)text[i - 1]) && !isspace((unsigned char)text[i])) o[n++] = i;
    o[n] = len;
    *off = o;
    return len ? (long)n : 0;
}

static int llm_peek(struct vx_stream *s, uint64_t *due) {
    sim_llm *l = (sim_llm *)s;

    *due = l->due;
    return 1;
}

static void llm_take(struct vx_stream *s, sim_event *ev) {
    sim_llm *l = (sim_llm *)s;

    if (s->fate.fail && l->next == l->fail_idx) {
        ev->error = ev->terminal = 1;
        return;
    }
    if (l->next == l->n_tok) {
        ev->terminal = 1;
        ev->index = l->n_tok;
        return;
    }
    ev->index = l->next++;
    if (l->next < l->n_tok) l->due += s->in->token_delay_ns + sim_jitter_ns(s->in, &s->fate.rng);
}

static void llm_deliver(struct vx_stream *s, sim_event *ev) {
    sim_llm *l = (sim_llm *)s;

    if (ev->error) {
        l->ev.on_error(l->ev.user, &ev->err);
    } else if (ev->index == l->n_tok) {
        l->usage.completion_tokens = (uint32_t)l->n_tok;
        l->ev.on_done(l->ev.user, &l->usage);
    } else if (l->name) {
        size_t i = (size_t)ev->index;
        l->ev.on_tool_call(l->ev.user, 0, i ? NULL : l->call_id, i ? NULL : l->name,
                           l->reply + l->off[i], l->off[i + 1] - l->off[i]);
    } else {
        size_t i = (size_t)ev->index;
        l->ev.on_token(l->ev.user, l->reply + l->off[i], l->off[i + 1] - l->off[i]);
    }
}

static void llm_destroy(struct vx_stream *s) {
    sim_llm *l = (sim_llm *)s;

    free(l->name);
    free(l->call_id);
    free(l->reply);
    free(l->off);
}

static const sim_kind_ops llm_ops = {llm_peek, llm_take, llm_deliver, llm_destroy};

/* Fails at start with the simulated error, VX_EINVAL (missing callbacks,
 * tools the sim cannot use: see llm_decide; such a call takes no number),
 * VX_ENOMEM; with hang = block returns VX_ECANCELED with *out set (see
 * sim_stream_block). */
static int llm_generate(void *inst, const vx_message *msgs, size_t n,
                        const vx_llm_params *params, const vx_llm_events *ev,
                        vx_stream **out, vx_error *err) {
    sim_inst *in = inst;
    vx_llm_params p = {0};
    sim_llm *l = NULL;
    sim_fate f;
    vx_llm_events e = {0};
    char *name = NULL, *text = NULL;
    long n_tok;
    int rc;

    /* Atomic: with hang = block another thread may be polling *out. */
    __atomic_store_n(out, NULL, __ATOMIC_RELAXED);
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!e.on_token || !e.on_done || !e.on_error || (n && !msgs)) {
        sim_seterr(err, VX_EINVAL, 0, "sim: generate needs messages and all three events");
        return VX_EINVAL;
    }
    if (!ev || ev->struct_size < VX_LLM_EVENTS_SIZE_1_3) e.on_tool_call = NULL;
    if (params)
        memcpy(&p, params, params->struct_size < sizeof(p) ? params->struct_size : sizeof(p));
    rc = llm_decide(in, msgs, n,
                    params && params->struct_size >= VX_LLM_PARAMS_SIZE_1_3 ? &p : NULL,
                    e.on_tool_call != NULL, &name, &text, err);
    if (rc != VX_OK) return rc;
    sim_call_begin(in, &f);
    if (f.fail && in->fail_at == SIM_AT_START) {
        free(name);
        free(text);
        return sim_fail_now(in, &f, err);
    }

    if (!(l = calloc(1, sizeof(*l)))) goto oom;
    l->ev = e;
    l->name = name;
    l->reply = text;
    name = text = NULL;
    if (l->name) {
        char id[32];
        snprintf(id, sizeof(id), "call_sim%llu", (unsigned long long)f.call);
        if (!(l->call_id = strdup(id)) || llm_fragments(l->reply, &l->off) != 0) goto oom;
        l->n_tok = 3;
    } else {
        if ((n_tok = llm_tokenize(l->reply, &l->off)) < 0) goto oom;
        l->n_tok = (size_t)n_tok;
        if (p.max_tokens > 0 && (size_t)p.max_tokens < l->n_tok)
            l->n_tok = (size_t)p.max_tokens;
    }
    for (size_t i = 0; i < n; i++)
        l->usage.prompt_tokens += (uint32_t)sim_count_words(msgs[i].content);
    /* mid_stream: half the answer, at least one token, then the error. */
    l->fail_idx = in->fail_at == SIM_AT_MID_STREAM ? (l->n_tok / 2 ? l->n_tok / 2 : 1) : 0;
    l->due = sim_now_ns() + in->latency_ns + sim_jitter_ns(in, &f.rng);
    if ((rc = sim_stream_init(&l->base, in, &llm_ops, &f, err)) != VX_OK) {
        llm_destroy(&l->base);
        free(l);
        return rc;
    }
    if (in->hang == SIM_HANG_BLOCK) return sim_stream_block(&l->base, out, err);
    if ((rc = sim_stream_start(&l->base, err)) != VX_OK) {
        sim_stream_close(&l->base);
        return rc;
    }
    *out = &l->base;
    return VX_OK;
oom:
    if (l) llm_destroy(&l->base);
    free(l);
    free(name);
    free(text);
    sim_seterr(err, VX_ENOMEM, 1, "sim: out of memory starting a generation");
    return VX_ENOMEM;
}

const vx_llm_vtable sim_llm_vtable = {
    .struct_size = sizeof(vx_llm_vtable),
    .generate = llm_generate,
    .cancel = sim_stream_cancel,
    .close = sim_stream_close,
};
