/*
 * sim LLM: answers with the configured reply, or echoes the last user
 * message, one word per token.
 *
 * A token is a word with the whitespace that follows it ("You ", "said: "),
 * the first one also carrying any leading whitespace, so the tokens
 * concatenate to exactly the reply. The first token comes after latency,
 * each next one token_delay later (each delay plus its own jitter), and
 * on_done follows the last token at once.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sim.h"

typedef struct sim_llm {
    struct vx_stream base;
    vx_llm_events ev;
    char *reply;
    size_t *off;   /* token i is reply[off[i] .. off[i+1]) */
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
    } else {
        size_t i = (size_t)ev->index;
        l->ev.on_token(l->ev.user, l->reply + l->off[i], l->off[i + 1] - l->off[i]);
    }
}

static void llm_destroy(struct vx_stream *s) {
    sim_llm *l = (sim_llm *)s;

    free(l->reply);
    free(l->off);
}

static const sim_kind_ops llm_ops = {llm_peek, llm_take, llm_deliver, llm_destroy};

/* Fails at start with the simulated error, VX_EINVAL (missing callbacks),
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
    long n_tok;
    int rc;

    /* Atomic: with hang = block another thread may be polling *out. */
    __atomic_store_n(out, NULL, __ATOMIC_RELAXED);
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!e.on_token || !e.on_done || !e.on_error || (n && !msgs)) {
        sim_seterr(err, VX_EINVAL, 0, "sim: generate needs messages and all three events");
        return VX_EINVAL;
    }
    if (params)
        memcpy(&p, params, params->struct_size < sizeof(p) ? params->struct_size : sizeof(p));
    sim_call_begin(in, &f);
    if (f.fail && in->fail_at == SIM_AT_START) return sim_fail_now(in, &f, err);

    if (!(l = calloc(1, sizeof(*l)))) goto oom;
    l->ev = e;
    if (!(l->reply = llm_answer(in, msgs, n))) goto oom;
    if ((n_tok = llm_tokenize(l->reply, &l->off)) < 0) goto oom;
    l->n_tok = (size_t)n_tok;
    if (p.max_tokens > 0 && (size_t)p.max_tokens < l->n_tok) l->n_tok = (size_t)p.max_tokens;
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
    sim_seterr(err, VX_ENOMEM, 1, "sim: out of memory starting a generation");
    return VX_ENOMEM;
}

const vx_llm_vtable sim_llm_vtable = {
    .struct_size = sizeof(vx_llm_vtable),
    .generate = llm_generate,
    .cancel = sim_stream_cancel,
    .close = sim_stream_close,
};
