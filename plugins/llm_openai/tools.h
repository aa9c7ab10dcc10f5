/*
 * tools: function calling over chat completions, for llm_openai.
 *
 * Request side. The host offers functions in the OpenAI Realtime shape
 *     [{"type":"function","name":"f","description":"...","parameters":{...}}]
 * and chat completions wants them wrapped:
 *     [{"type":"function","function":{"name":"f","description":"...","parameters":{...}}}]
 * tool_choice is "auto", "none", "required" or, naming one function,
 *     {"type":"function","function":{"name":"f"}}.
 *
 * Answer side. A call arrives as fragments in choices[0].delta.tool_calls[]
 * (or whole in message.tool_calls[] of a non-streamed answer). OpenAI and
 * vLLM send the id and the name in a call's first fragment and the JSON
 * arguments in many later pieces; Ollama and llama.cpp send a whole call in
 * one fragment; fragments of parallel calls are told apart by "index". A
 * tools_stream follows the calls of one generation and hands each fragment
 * on in the shape of vx_llm_events.on_tool_call:
 *   - calls are renumbered 0, 1, 2... in the order they first appear, so a
 *     server that starts at 1, or reuses index 0 for every call of a
 *     parallel set (each with its own id), still gives the host 0..n-1;
 *   - a fragment without "index" continues the last call unless it carries
 *     an id or a name of its own (older Ollama sends whole calls so);
 *   - the first fragment handed on always carries the id and the name: a
 *     call without a server id gets one made up ("call_vx<N>"), and
 *     argument pieces that come before the name are held back until it
 *     arrives;
 *   - arguments sent as a JSON value instead of a string (some servers)
 *     are passed on as their compact JSON text.
 */
#ifndef VX_LLM_TOOLS_H
#define VX_LLM_TOOLS_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>
#include <voxray/plugin.h>

/* Bounds on what one generation may hold: more calls, or more arguments
 * held back waiting for a name, is not a chat completion any more. */
#define TOOLS_MAX_CALLS 128
#define TOOLS_MAX_PENDING (1u << 20)

/* tools_json (Realtime shape; entries already in the chat-completions shape
 * pass unchanged) as a new chat-completions "tools" array in *out, or NULL
 * in *out when the array is empty (servers refuse "tools": []). Returns 0,
 * or VX_EINVAL with err filled (not a JSON array, an entry that is not an
 * object, not of type "function" or without a name) or VX_ENOMEM. */
int tools_convert(const char *tools_json, json_t **out, vx_error *err);

/* tool_choice in the chat-completions shape, a new reference; NULL when
 * choice is NULL or "" (nothing to send: the server's default is "auto")
 * or memory ran out. */
json_t *tools_choice(const char *choice);

/* One fragment for the host; id and name non-NULL on a call's first
 * fragment only, args not NUL-terminated. */
typedef void (*tools_emit_fn)(void *ctx, uint32_t index, const char *id, const char *name,
                              const char *args, size_t len);

typedef struct tools_call tools_call;

/* The calls of one generation. Zero it to start; tools_stream_free it. */
typedef struct tools_stream {
    tools_call *calls;
    size_t n;
} tools_stream;

/* One tool_calls array of a delta (or of a whole message). Fragments that
 * can go out are handed to emit before it returns. Returns 0, or VX_EPROTO
 * (an entry is not an object, too many calls, too much held back) or
 * VX_ENOMEM, with err filled. */
int tools_feed(tools_stream *ts, const json_t *tool_calls, tools_emit_fn emit, void *ctx,
               vx_error *err);

/* The answer is complete. Returns 0, or VX_EPROTO when a call never got a
 * function name (its fragments never went out). */
int tools_finish(const tools_stream *ts, vx_error *err);

/* Number of calls seen so far. */
size_t tools_count(const tools_stream *ts);

void tools_stream_free(tools_stream *ts);

#endif
