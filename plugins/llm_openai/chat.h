/*
 * chat: the reading of a chat completion answer, for llm_openai.
 *
 * A streamed answer is a series of server-sent events, each the JSON of a
 * chat.completion.chunk (or an error object, which vLLM and OpenAI send
 * after the 200 when the generation fails), ended by "[DONE]"; a
 * non-streamed answer is one chat.completion. Text deltas go to on_token;
 * tool-call fragments to tools.h's stream and from there to on_tool; token
 * counts and the finish_reason are kept. Nothing here knows about HTTP or
 * the host: llm_openai.c feeds it and decides when the answer is over.
 */
#ifndef VX_LLM_CHAT_H
#define VX_LLM_CHAT_H

#include <stddef.h>

#include <voxray/plugin.h>

#include "tools.h"

typedef struct chat_events {
    void *user;
    /* A non-empty piece of the reply's text (not NUL-terminated). */
    void (*on_token)(void *user, const char *text, size_t len);
    /* A fragment of a tool call (tools.h); NULL: calls are dropped. */
    tools_emit_fn on_tool;
} chat_events;

/* One answer being read. Zero it, set ev; chat_answer_free it. */
typedef struct chat_answer {
    chat_events ev;
    tools_stream tools; /* the answer's tool calls */
    vx_usage usage;
    int has_usage;
    int finished; /* a finish_reason arrived */
} chat_answer;

/* chat_event's answer to "data: [DONE]". */
#define CHAT_DONE 1

/* The data of one server-sent event (len bytes): 0 when read (its text and
 * calls went out), CHAT_DONE for "[DONE]", or a VX_E* code with err filled:
 * VX_EPROTO for an event that is not a JSON object (or a tool call the
 * plugin cannot follow), the code of an error object's HTTP status (else
 * VX_EUNAVAIL, retryable) for an error in the stream, VX_ENOMEM. */
int chat_event(chat_answer *a, const char *data, size_t len, vx_error *err);

/* A whole non-streamed answer (a chat.completion, len bytes): 0, or a
 * VX_E* code with err filled as chat_event does. */
int chat_whole(chat_answer *a, const char *body, size_t len, vx_error *err);

/* The answer is complete: 0, or VX_EPROTO with err filled when one of its
 * tool calls never got a name (nothing of it went out). */
int chat_finish(const chat_answer *a, vx_error *err);

void chat_answer_free(chat_answer *a);

#endif
