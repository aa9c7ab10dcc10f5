/*
 * mock_openai: a replaying OpenAI-compatible HTTP server for the tests of
 * llm_openai, stt_openai and tts_openai.
 *
 *     mock_openai [PORT]
 *
 * Listens on 127.0.0.1:PORT (0 or none: any free port), prints the port on
 * a line of its own once it accepts connections, and runs until killed.
 * Every answer has the shape the OpenAI API documents; the request's model
 * name picks the behaviour, so a test chooses a script by configuring a
 * model:
 *
 *   POST .../chat/completions   ok split keepalive crlf (multi-line data too)
 *                               multiline nodone slow
 *                               hang truncated badjson streamerror ollama
 *                               llamacpp nonstream e401 e429 e500 e502html;
 *                               tool calls (whatever tools the request
 *                               offered): tools_openai tools_parallel
 *                               tools_ollama tools_llamacpp tools_noindex
 *                               tools_index0 tools_text tools_noname
 *                               tools_nonstream
 *                               (see tool_events);
 *                               any other model: 404 model_not_found
 *   POST .../audio/transcriptions  whisper-1 (any unknown name too) count
 *                               notext badjson slow hang e401 e429 e500
 *   POST .../audio/speech       tts-1 (any unknown name too) slow hang
 *                               jsonbody e401 e500
 *   GET    /__requests          every request so far, as a JSON array
 *   DELETE /__requests          forget them
 *
 * A recorded request is {"method", "path", "peer_port" (the client's port:
 * a reused connection keeps it), "headers" (names in lower case), "body"
 * (text bodies), "json" (when the body parses), "form" (multipart: name ->
 * {filename, content_type, size, value}) and "wav" (the form's "file" part
 * checked as a RIFF/WAVE file: valid, error, rate, channels, bits, samples
 * and the sum of the samples)}. Malformed requests get a 400 in OpenAI's
 * error shape; for chat that includes what OpenAI checks of function
 * calling: "tools" in the chat-completions shape and not empty,
 * "tool_choice" only with tools and naming an offered function, an
 * assistant message's null content only beside its "tool_calls", and a
 * "tool" message only answering a call of an earlier assistant message.
 *
 * One thread per connection: a script sleeps between the pieces it writes,
 * and gives up as soon as the client has gone.
 */
#include <errno.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <microhttpd.h>

#define MOCK_BODY_MAX (64u << 20)
#define MOCK_HANG_MS 60000

/* The reply every chat script streams, one token per chunk. */
static const char *const chat_tokens[] = {"Hello",  " there", "!",  " The", " café",
                                          " opens", " at",    " 8", " —",   " see",
                                          " you",   " soon",  "."};
#define N_TOKENS (sizeof(chat_tokens) / sizeof(chat_tokens[0]))
#define PROMPT_TOKENS 42

static pthread_mutex_t log_mu = PTHREAD_MUTEX_INITIALIZER;
static json_t *requests; /* guarded by log_mu */

/* ---------------------------------------------------------------- helpers */

static void sleep_ms(unsigned ms) {
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
        ;
}

/* Wait ms, or less when the client closes its end first. Returns 1 when
 * the client is gone. */
static int wait_client(struct MHD_Connection *conn, unsigned ms) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
    struct pollfd p;
    char c;

    if (!ci) {
        sleep_ms(ms);
        return 0;
    }
    p.fd = ci->connect_fd;
    p.events = POLLIN;
    for (unsigned waited = 0; waited < ms; waited += 20) {
        unsigned step = ms - waited < 20 ? ms - waited : 20;
        p.revents = 0;
        if (poll(&p, 1, (int)step) > 0) {
            if (p.revents & (POLLHUP | POLLERR)) return 1;
            if ((p.revents & POLLIN) && recv(p.fd, &c, 1, MSG_PEEK | MSG_DONTWAIT) == 0) return 1;
            sleep_ms(step); /* a pipelined request: nothing to do with it here */
        }
    }
    return 0;
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) n += (*p & 0xc0) != 0x80;
    return n;
}

static unsigned le16(const unsigned char *p) {
    return p[0] | p[1] << 8;
}

static unsigned long le32(const unsigned char *p) {
    return p[0] | p[1] << 8 | (unsigned long)p[2] << 16 | (unsigned long)p[3] << 24;
}

/* ---------------------------------------------------------------- scripts */

typedef struct piece {
    char *data;
    size_t len;
    unsigned delay_ms; /* before the piece */
} piece;

enum { END_OK, END_CUT, END_HANG };

/* A response body written piece by piece by the content reader. */
typedef struct script {
    struct MHD_Connection *conn;
    piece *p;
    size_t n, cap;
    size_t i, off; /* reader position */
    int ending;
} script;

static script *script_new(struct MHD_Connection *conn) {
    script *s = calloc(1, sizeof(*s));
    if (!s) abort();
    s->conn = conn;
    return s;
}

static void script_add(script *s, const char *data, size_t len, unsigned delay_ms) {
    if (s->n == s->cap) {
        s->cap = s->cap ? 2 * s->cap : 16;
        if (!(s->p = realloc(s->p, s->cap * sizeof(*s->p)))) abort();
    }
    if (!(s->p[s->n].data = malloc(len ? len : 1))) abort();
    memcpy(s->p[s->n].data, data, len);
    s->p[s->n].len = len;
    s->p[s->n].delay_ms = delay_ms;
    s->n++;
}

static void script_free(void *cls) {
    script *s = cls;
    for (size_t i = 0; i < s->n; i++) free(s->p[i].data);
    free(s->p);
    free(s);
}

static ssize_t script_read(void *cls, uint64_t pos, char *buf, size_t max) {
    script *s = cls;
    piece *p;
    size_t n;

    if (s->i == s->n) {
        if (s->ending == END_HANG) wait_client(s->conn, MOCK_HANG_MS);
        return s->ending == END_OK ? MHD_CONTENT_READER_END_OF_STREAM
                                   : MHD_CONTENT_READER_END_WITH_ERROR;
    }
    p = &s->p[s->i];
    if (s->off == 0 && p->delay_ms && wait_client(s->conn, p->delay_ms))
        return MHD_CONTENT_READER_END_WITH_ERROR;
    n = p->len - s->off < max ? p->len - s->off : max;
    memcpy(buf, p->data + s->off, n);
    s->off += n;
    if (s->off == p->len) s->i++, s->off = 0;
    return (ssize_t)n;
}

static enum MHD_Result send_script(struct MHD_Connection *conn, unsigned status,
                                   const char *ctype, script *s) {
    struct MHD_Response *r =
        MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 4096, script_read, s, script_free);
    enum MHD_Result rc;

    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    MHD_add_response_header(r, "Cache-Control", "no-cache");
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status,
                                 const char *ctype, const char *text) {
    struct MHD_Response *r = MHD_create_response_from_buffer(strlen(text), (void *)text,
                                                             MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc;

    if (!r) return MHD_NO;
    MHD_add_response_header(r, "Content-Type", ctype);
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* Sends j and drops the reference. */
static enum MHD_Result send_json(struct MHD_Connection *conn, unsigned status, json_t *j) {
    char *text = json_dumps(j, JSON_COMPACT);
    enum MHD_Result rc = send_text(conn, status, "application/json", text ? text : "{}");

    free(text);
    json_decref(j);
    return rc;
}

/* OpenAI's error shape. */
static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status,
                                  const char *type, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
static enum MHD_Result send_error(struct MHD_Connection *conn, unsigned status,
                                  const char *type, const char *code, const char *fmt, ...) {
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    return send_json(conn, status,
                     json_pack("{s:{s:s, s:s, s:n, s:s?}}", "error", "message", msg, "type", type,
                               "param", "code", code));
}

/* The canned failures shared by every endpoint; 0 when model names none. */
static int canned_error(struct MHD_Connection *conn, const char *model, enum MHD_Result *rc) {
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    const char *token = auth && strncmp(auth, "Bearer ", 7) == 0 ? auth + 7 : "(none)";

    if (strcmp(model, "e401") == 0)
        /* Echo the key, as a careless server might: the plugin must scrub it. */
        *rc = send_error(conn, 401, "invalid_request_error", "invalid_api_key",
                         "Incorrect API key provided: %s. You can find your API key at "
                         "https://platform.openai.com/account/api-keys.",
                         token);
    else if (strcmp(model, "e429") == 0)
        *rc = send_error(conn, 429, "requests", "rate_limit_exceeded",
                         "Rate limit reached for requests per min (RPM): Limit 3, Used 3, "
                         "Requested 1.");
    else if (strcmp(model, "e500") == 0)
        *rc = send_error(conn, 500, "server_error", NULL,
                         "The server had an error while processing your request. Sorry about "
                         "that!");
    else if (strcmp(model, "e502html") == 0)
        *rc = send_text(conn, 502, "text/html",
                        "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>"
                        "<center><h1>502 Bad Gateway</h1></center></body></html>\r\n");
    else
        return 0;
    return 1;
}

/* ---------------------------------------------------------------- chat */

static json_t *chunk_new(const char *model) {
    return json_pack("{s:s, s:s, s:i, s:s, s:s, s:[]}", "id", "chatcmpl-mock", "object",
                     "chat.completion.chunk", "created", 1700000000, "model", model,
                     "system_fingerprint", "fp_mock", "choices");
}

/* An OpenAI chunk with one choice. delta is taken; finish may be NULL. */
static json_t *chunk_choice(const char *model, json_t *delta, const char *finish, int with_usage) {
    json_t *c = chunk_new(model);

    json_array_append_new(json_object_get(c, "choices"),
                          json_pack("{s:i, s:o, s:n, s:o}", "index", 0, "delta", delta,
                                    "logprobs", "finish_reason",
                                    finish ? json_string(finish) : json_null()));
    if (with_usage) json_object_set_new(c, "usage", json_null());
    return c;
}

static json_t *usage_new(void) {
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", PROMPT_TOKENS, "completion_tokens",
                     (int)N_TOKENS, "total_tokens", PROMPT_TOKENS + (int)N_TOKENS);
}

/* The events of a chat stream in the shape of one server, as JSON (the
 * final "[DONE]" is not in the list). */
static json_t *chat_events(const char *model, const char *shape) {
    json_t *ev = json_array(), *c;

    if (strcmp(shape, "ollama") == 0) {
        /* Ollama repeats the role in every delta and has no usage:null. */
        for (size_t i = 0; i < N_TOKENS; i++) {
            c = json_pack("{s:s, s:s, s:i, s:s, s:s, s:[{s:i, s:{s:s, s:s}, s:n}]}", "id",
                          "chatcmpl-123", "object", "chat.completion.chunk", "created",
                          1700000000, "model", model, "system_fingerprint", "fp_ollama",
                          "choices", "index", 0, "delta", "role", "assistant", "content",
                          chat_tokens[i], "finish_reason");
            json_array_append_new(ev, c);
        }
        c = json_pack("{s:s, s:s, s:i, s:s, s:s, s:[{s:i, s:{s:s, s:s}, s:s}]}", "id",
                      "chatcmpl-123", "object", "chat.completion.chunk", "created", 1700000000,
                      "model", model, "system_fingerprint", "fp_ollama", "choices", "index", 0,
                      "delta", "role", "assistant", "content", "", "finish_reason", "stop");
        json_array_append_new(ev, c);
        c = json_pack("{s:s, s:s, s:i, s:s, s:s, s:[], s:o}", "id", "chatcmpl-123", "object",
                      "chat.completion.chunk", "created", 1700000000, "model", model,
                      "system_fingerprint", "fp_ollama", "choices", "usage", usage_new());
        json_array_append_new(ev, c);
        return ev;
    }
    if (strcmp(shape, "llamacpp") == 0) {
        /* llama.cpp: content null beside the role, usage and timings in the
         * finish chunk, no separate usage chunk. */
        c = json_pack("{s:[{s:n, s:i, s:{s:s, s:n}}], s:i, s:s, s:s, s:s, s:s}", "choices",
                      "finish_reason", "index", 0, "delta", "role", "assistant", "content",
                      "created", 1700000000, "id", "chatcmpl-llama", "model", model,
                      "system_fingerprint", "b4000-mock", "object", "chat.completion.chunk");
        json_array_append_new(ev, c);
        for (size_t i = 0; i < N_TOKENS; i++) {
            c = json_pack("{s:[{s:n, s:i, s:{s:s}}], s:i, s:s, s:s, s:s, s:s}", "choices",
                          "finish_reason", "index", 0, "delta", "content", chat_tokens[i],
                          "created", 1700000000, "id", "chatcmpl-llama", "model", model,
                          "system_fingerprint", "b4000-mock", "object",
                          "chat.completion.chunk");
            json_array_append_new(ev, c);
        }
        c = json_pack("{s:[{s:s, s:i, s:{}}], s:i, s:s, s:s, s:s, s:s, s:o, s:{s:i, s:f}}",
                      "choices", "finish_reason", "stop", "index", 0, "delta", "created",
                      1700000000, "id", "chatcmpl-llama", "model", model, "system_fingerprint",
                      "b4000-mock", "object", "chat.completion.chunk", "usage", usage_new(),
                      "timings", "prompt_n", PROMPT_TOKENS, "predicted_ms", 12.5);
        json_array_append_new(ev, c);
        return ev;
    }
    /* OpenAI (and vLLM): role chunk, content chunks, finish chunk, then the
     * usage chunk with empty choices. */
    json_array_append_new(ev, chunk_choice(model,
                                           json_pack("{s:s, s:s, s:n}", "role", "assistant",
                                                     "content", "", "refusal"),
                                           NULL, 1));
    for (size_t i = 0; i < N_TOKENS; i++)
        json_array_append_new(
            ev, chunk_choice(model, json_pack("{s:s}", "content", chat_tokens[i]), NULL, 1));
    json_array_append_new(ev, chunk_choice(model, json_object(), "stop", 1));
    c = chunk_new(model);
    json_object_set_new(c, "usage", usage_new());
    json_array_append_new(ev, c);
    return ev;
}

/* ---------------------------------------------------------------- tool calls */

/* What the tool scripts call: the arguments each one reassembles to. */
#define TOOL_ARGS "{\"city\":\"São Paulo\",\"unit\":\"celsius\"}"
#define TOOL_COMPLETION_TOKENS 17

/* OpenAI splits arguments wherever its tokens end: inside keys, around
 * quotes, between the bytes of a word (never inside a UTF-8 sequence: each
 * piece is a JSON string). */
static const char *const tool_pieces[] = {"{\"",   "city", "\":\"", "S",   "ão",   " Paulo",
                                          "\",\"", "unit", "\":\"", "cel", "sius", "\"}"};
#define N_PIECES (sizeof(tool_pieces) / sizeof(tool_pieces[0]))

static json_t *usage_of(int completion) {
    return json_pack("{s:i, s:i, s:i}", "prompt_tokens", PROMPT_TOKENS, "completion_tokens",
                     completion, "total_tokens", PROMPT_TOKENS + completion);
}

/* One entry of delta.tool_calls. index < 0, id, name and args NULL: left
 * out. */
static json_t *call_frag(int index, const char *id, const char *name, const char *args) {
    json_t *f = json_object(), *fn = json_object();

    if (index >= 0) json_object_set_new(f, "index", json_integer(index));
    if (id) {
        json_object_set_new(f, "id", json_string(id));
        json_object_set_new(f, "type", json_string("function"));
    }
    if (name) json_object_set_new(fn, "name", json_string(name));
    if (args) json_object_set_new(fn, "arguments", json_string(args));
    json_object_set_new(f, "function", fn);
    return f;
}

/* A delta carrying the given fragments (taken), NULL-ended. */
static json_t *calls_delta(json_t *first, ...) {
    json_t *d = json_pack("{s:[]}", "tool_calls"), *arr = json_object_get(d, "tool_calls");
    va_list ap;

    va_start(ap, first);
    for (json_t *f = first; f; f = va_arg(ap, json_t *)) json_array_append_new(arr, f);
    va_end(ap);
    return d;
}

/* Append an OpenAI chunk with delta (taken). */
static void add_chunk(json_t *ev, const char *model, json_t *delta, const char *finish) {
    json_array_append_new(ev, chunk_choice(model, delta, finish, 1));
}

/* OpenAI's first chunk of a tool answer: the role, no content, and the
 * first fragment of call 0. */
static void add_first_call(json_t *ev, const char *model, const char *id, const char *name) {
    json_t *d = calls_delta(call_frag(0, id, name, ""), NULL);

    json_object_set_new(d, "role", json_string("assistant"));
    json_object_set_new(d, "content", json_null());
    json_object_set_new(d, "refusal", json_null());
    add_chunk(ev, model, d, NULL);
}

/* OpenAI's ending of a tool answer: the finish chunk, then usage. */
static void add_tool_end(json_t *ev, const char *model) {
    json_t *c = chunk_new(model);

    add_chunk(ev, model, json_object(), "tool_calls");
    json_object_set_new(c, "usage", usage_of(TOOL_COMPLETION_TOKENS));
    json_array_append_new(ev, c);
}

/* An Ollama chunk with delta (taken): role and content "" in every delta,
 * no usage:null. */
static json_t *ollama_chunk(const char *model, json_t *delta, const char *finish) {
    json_object_set_new(delta, "role", json_string("assistant"));
    json_object_set_new(delta, "content", json_string(""));
    return json_pack("{s:s, s:s, s:i, s:s, s:s, s:[{s:i, s:o, s:o}]}", "id", "chatcmpl-123",
                     "object", "chat.completion.chunk", "created", 1700000000, "model", model,
                     "system_fingerprint", "fp_ollama", "choices", "index", 0, "delta", delta,
                     "finish_reason", finish ? json_string(finish) : json_null());
}

/* A llama.cpp chunk with delta (taken); usage (taken) in the finish chunk. */
static json_t *llamacpp_chunk(const char *model, json_t *delta, const char *finish,
                              json_t *usage) {
    json_t *c =
        json_pack("{s:[{s:o, s:i, s:o}], s:i, s:s, s:s, s:s, s:s}", "choices", "finish_reason",
                  finish ? json_string(finish) : json_null(), "index", 0, "delta", delta,
                  "created", 1700000000, "id", "chatcmpl-llama", "model", model,
                  "system_fingerprint", "b4000-mock", "object", "chat.completion.chunk");

    if (usage) {
        json_object_set_new(c, "usage", usage);
        json_object_set_new(
            c, "timings",
            json_pack("{s:i, s:f}", "prompt_n", PROMPT_TOKENS, "predicted_ms", 12.5));
    }
    return c;
}

/* The events of a tool script (the final "[DONE]" not in the list), or
 * NULL when model names none:
 *   tools_openai    call_w8L2 get_weather: id and name in the first
 *                   fragment with "" arguments, then TOOL_ARGS in 12 pieces;
 *                   finish_reason tool_calls, then the usage chunk
 *   tools_parallel  call_p0 get_weather {"city":"Paris"} and call_p1
 *                   get_time {"zone":"Europe/Paris"}, their fragments
 *                   interleaved by index
 *   tools_ollama    Ollama: the whole call (call_ol1 get_weather TOOL_ARGS)
 *                   in one chunk, role and content "" in every delta
 *   tools_llamacpp  llama.cpp: the whole call (call_lc1) in one chunk, usage
 *                   in the finish chunk
 *   tools_noindex   older Ollama: two whole calls in one delta, neither with
 *                   index nor id (get_weather TOOL_ARGS, get_time {})
 *   tools_index0    Ollama 0.20 (ollama#15457): two whole calls in two
 *                   chunks, both index 0, ids call_o0 (get_weather
 *                   TOOL_ARGS) and call_o1 (get_time {})
 *   tools_text      "Let me check the weather." in 3 tokens, then
 *                   call_t1 get_weather TOOL_ARGS in 3 pieces
 *   tools_noname    a call whose fragments never name the function
 *   tools_nonstream (not streamed: see tool_completion) */
static json_t *tool_events(const char *model) {
    static const struct {
        int index;
        const char *args;
    } parallel[] = {
        {0, "{\"city\":"}, {1, "{\"zone\":\"Europe"}, {0, "\"Paris\"}"}, {1, "/Paris\"}"}};
    static const char *const text[] = {"Let me", " check", " the weather."};
    static const char *const text_args[] = {"{\"city\":\"São",
                                            " Paulo\",\"unit\":", "\"celsius\"}"};
    json_t *ev = json_array(), *c;

    if (strcmp(model, "tools_openai") == 0) {
        add_first_call(ev, model, "call_w8L2", "get_weather");
        for (size_t i = 0; i < N_PIECES; i++)
            add_chunk(ev, model, calls_delta(call_frag(0, NULL, NULL, tool_pieces[i]), NULL),
                      NULL);
        add_tool_end(ev, model);
    } else if (strcmp(model, "tools_parallel") == 0) {
        add_first_call(ev, model, "call_p0", "get_weather");
        add_chunk(ev, model, calls_delta(call_frag(1, "call_p1", "get_time", ""), NULL), NULL);
        for (size_t i = 0; i < sizeof(parallel) / sizeof(parallel[0]); i++)
            add_chunk(
                ev, model,
                calls_delta(call_frag(parallel[i].index, NULL, NULL, parallel[i].args), NULL),
                NULL);
        add_tool_end(ev, model);
    } else if (strcmp(model, "tools_ollama") == 0) {
        c = calls_delta(call_frag(0, "call_ol1", "get_weather", TOOL_ARGS), NULL);
        json_array_append_new(ev, ollama_chunk(model, c, NULL));
        json_array_append_new(ev, ollama_chunk(model, json_object(), "tool_calls"));
        c = json_pack("{s:s, s:s, s:i, s:s, s:s, s:[], s:o}", "id", "chatcmpl-123", "object",
                      "chat.completion.chunk", "created", 1700000000, "model", model,
                      "system_fingerprint", "fp_ollama", "choices", "usage",
                      usage_of(TOOL_COMPLETION_TOKENS));
        json_array_append_new(ev, c);
    } else if (strcmp(model, "tools_llamacpp") == 0) {
        c = calls_delta(call_frag(0, "call_lc1", "get_weather", TOOL_ARGS), NULL);
        json_array_append_new(ev, llamacpp_chunk(model, c, NULL, NULL));
        json_array_append_new(ev, llamacpp_chunk(model, json_object(), "tool_calls",
                                                 usage_of(TOOL_COMPLETION_TOKENS)));
    } else if (strcmp(model, "tools_noindex") == 0) {
        c = calls_delta(call_frag(-1, NULL, "get_weather", TOOL_ARGS),
                        call_frag(-1, NULL, "get_time", "{}"), NULL);
        json_array_append_new(ev, ollama_chunk(model, c, NULL));
        json_array_append_new(ev, ollama_chunk(model, json_object(), "stop"));
    } else if (strcmp(model, "tools_index0") == 0) {
        c = calls_delta(call_frag(0, "call_o0", "get_weather", TOOL_ARGS), NULL);
        json_array_append_new(ev, ollama_chunk(model, c, NULL));
        c = calls_delta(call_frag(0, "call_o1", "get_time", "{}"), NULL);
        json_array_append_new(ev, ollama_chunk(model, c, NULL));
        json_array_append_new(ev, ollama_chunk(model, json_object(), "tool_calls"));
    } else if (strcmp(model, "tools_text") == 0) {
        add_chunk(ev, model,
                  json_pack("{s:s, s:s, s:n}", "role", "assistant", "content", "", "refusal"),
                  NULL);
        for (size_t i = 0; i < 3; i++)
            add_chunk(ev, model, json_pack("{s:s}", "content", text[i]), NULL);
        add_chunk(ev, model, calls_delta(call_frag(0, "call_t1", "get_weather", ""), NULL),
                  NULL);
        for (size_t i = 0; i < 3; i++)
            add_chunk(ev, model, calls_delta(call_frag(0, NULL, NULL, text_args[i]), NULL),
                      NULL);
        add_tool_end(ev, model);
    } else if (strcmp(model, "tools_noname") == 0) {
        add_chunk(ev, model, calls_delta(call_frag(0, "call_nn", NULL, "{}"), NULL), NULL);
        add_tool_end(ev, model);
    } else {
        json_decref(ev);
        return NULL;
    }
    return ev;
}

/* tools_nonstream: one chat.completion whose message holds the call. */
static json_t *tool_completion(const char *model) {
    return json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s, s:n, s:[o]}, s:s}], s:o}", "id",
                     "chatcmpl-mock", "object", "chat.completion", "created", 1700000000,
                     "model", model, "choices", "index", 0, "message", "role", "assistant",
                     "content", "tool_calls",
                     call_frag(-1, "call_ns1", "get_weather", TOOL_ARGS), "finish_reason",
                     "tool_calls", "usage", usage_of(TOOL_COMPLETION_TOKENS));
}

/* What OpenAI checks of the function calling in a chat request. Sends the
 * 400 and returns 1 when something is wrong. */
static int bad_tools(struct MHD_Connection *conn, const json_t *body, enum MHD_Result *rc) {
    const json_t *tools = json_object_get(body, "tools"),
                 *choice = json_object_get(body, "tool_choice");
    const json_t *msgs = json_object_get(body, "messages"), *t, *m;
    json_t *ids = json_object(); /* call ids of earlier assistant messages */
    char why[256] = "";
    size_t i, k;

    if (tools && !json_is_array(tools))
        snprintf(why, sizeof(why), "Invalid type for 'tools': expected an array.");
    else if (tools && json_array_size(tools) == 0)
        snprintf(why, sizeof(why),
                 "Invalid 'tools': empty array. Expected an array with "
                 "minimum length 1, but got an empty array instead.");
    json_array_foreach(tools, i, t) {
        if (*why) break;
        if (!json_is_object(json_object_get(t, "function")))
            snprintf(why, sizeof(why), "Missing required parameter: 'tools[%zu].function'.", i);
        else if (!json_is_string(json_object_get(json_object_get(t, "function"), "name")))
            snprintf(why, sizeof(why),
                     "Missing required parameter: 'tools[%zu].function.name'.", i);
        else if (!json_is_string(json_object_get(t, "type")) ||
                 strcmp(json_string_value(json_object_get(t, "type")), "function") != 0)
            snprintf(why, sizeof(why),
                     "Invalid value for 'tools[%zu].type': expected 'function'.", i);
    }
    if (!*why && choice && !tools)
        snprintf(why, sizeof(why),
                 "Invalid value for 'tool_choice': 'tool_choice' is only "
                 "allowed when 'tools' are specified.");
    if (!*why && json_is_string(choice)) {
        const char *c = json_string_value(choice);
        if (strcmp(c, "auto") != 0 && strcmp(c, "none") != 0 && strcmp(c, "required") != 0)
            snprintf(why, sizeof(why),
                     "Invalid value: '%.64s'. Supported values are: 'none', "
                     "'auto', and 'required'.",
                     c);
    } else if (!*why && choice) {
        const char *name =
            json_string_value(json_object_get(json_object_get(choice, "function"), "name"));
        int offered = 0;
        json_array_foreach(tools, i, t) {
            const char *n =
                json_string_value(json_object_get(json_object_get(t, "function"), "name"));
            offered |= name && n && strcmp(n, name) == 0;
        }
        if (!name)
            snprintf(why, sizeof(why),
                     "Missing required parameter: 'tool_choice.function.name'.");
        else if (!offered)
            snprintf(why, sizeof(why),
                     "Invalid value for 'tool_choice': function '%.64s' is not "
                     "among the tools.",
                     name);
    }
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        const json_t *content = json_object_get(m, "content"),
                     *calls = json_object_get(m, "tool_calls");
        if (*why) break;
        if (!role) {
            snprintf(why, sizeof(why), "Missing required parameter: 'messages[%zu].role'.", i);
        } else if (json_is_array(calls) && json_array_size(calls) &&
                   strcmp(role, "assistant") == 0) {
            json_array_foreach(calls, k, t) {
                const json_t *fn = json_object_get(t, "function");
                if (!json_is_string(json_object_get(t, "id")) ||
                    !json_is_string(json_object_get(fn, "name")) ||
                    !json_is_string(json_object_get(fn, "arguments"))) {
                    snprintf(why, sizeof(why),
                             "Missing required parameter: "
                             "'messages[%zu].tool_calls[%zu]' needs id, function.name and "
                             "function.arguments (a string).",
                             i, k);
                    break;
                }
                json_object_set_new(ids, json_string_value(json_object_get(t, "id")),
                                    json_true());
            }
            if (!*why && content && !json_is_null(content) && !json_is_string(content))
                snprintf(why, sizeof(why), "Invalid type for 'messages[%zu].content'.", i);
        } else if (!json_is_string(content)) {
            snprintf(why, sizeof(why),
                     "Invalid type for 'messages[%zu].content': expected a "
                     "string, got %s.",
                     i, content ? "something else" : "nothing");
        } else if (strcmp(role, "tool") == 0) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            if (!id)
                snprintf(why, sizeof(why),
                         "Missing required parameter: 'messages[%zu].tool_call_id'.", i);
            else if (!json_object_get(ids, id))
                snprintf(why, sizeof(why),
                         "Invalid parameter: messages with role 'tool' must be a "
                         "response to a preceeding message with 'tool_calls'.");
        }
    }
    json_decref(ids);
    if (!*why) return 0;
    *rc = send_error(conn, 400, "invalid_request_error", NULL, "%s", why);
    return 1;
}

/* Append "data: ...<eol><eol>" (or, multiline, the event pretty-printed
 * over several data lines). */
static void sse_append(char **buf, size_t *len, const char *data, const char *eol, int multiline) {
    /* Worst case: every byte on a line of its own. */
    char *b = realloc(*buf, *len + strlen(data) * 9 + 64);
    const char *p = data;

    if (!b) abort();
    *buf = b;
    if (!multiline) {
        *len += (size_t)sprintf(b + *len, "data: %s%s%s", data, eol, eol);
        return;
    }
    while (*p) {
        const char *nl = strchr(p, '\n');
        size_t l = nl ? (size_t)(nl - p) : strlen(p);
        *len += (size_t)sprintf(b + *len, "data: %.*s%s", (int)l, p, eol);
        p += l + (nl ? 1 : 0);
    }
    *len += (size_t)sprintf(b + *len, "%s", eol);
}

static enum MHD_Result chat(struct MHD_Connection *conn, json_t *body) {
    const char *model = json_string_value(json_object_get(body, "model"));
    json_t *msgs = json_object_get(body, "messages"), *ev = NULL;
    const char *shape = "openai", *eol = "\n";
    int multiline = 0, done = 1, keepalive = 0, split = 0;
    unsigned delay = 0;
    size_t upto, len = 0, i;
    char *buf = NULL;
    enum MHD_Result rc;
    script *s;

    if (!model) return send_error(conn, 400, "invalid_request_error", NULL, "you must provide a model parameter");
    if (!json_is_array(msgs) || json_array_size(msgs) == 0)
        return send_error(conn, 400, "invalid_request_error", NULL, "'messages' must be a non-empty array");
    if (bad_tools(conn, body, &rc)) return rc;
    if (canned_error(conn, model, &rc)) return rc;
    if (strcmp(model, "tools_nonstream") == 0)
        return send_json(conn, 200, tool_completion(model));
    if (strcmp(model, "nonstream") == 0) {
        char text[256] = "";
        for (i = 0; i < N_TOKENS; i++) strcat(text, chat_tokens[i]);
        return send_json(conn, 200,
                         json_pack("{s:s, s:s, s:i, s:s, s:[{s:i, s:{s:s, s:s}, s:s}], s:o}",
                                   "id", "chatcmpl-mock", "object", "chat.completion",
                                   "created", 1700000000, "model", model, "choices", "index",
                                   0, "message", "role", "assistant", "content", text,
                                   "finish_reason", "stop", "usage", usage_new()));
    }
    if (strcmp(model, "ollama") == 0 || strcmp(model, "llamacpp") == 0) shape = model;
    else if (strcmp(model, "crlf") == 0) eol = "\r\n", multiline = 1;
    else if (strcmp(model, "multiline") == 0) multiline = 1;
    else if (strcmp(model, "nodone") == 0) done = 0;
    else if (strcmp(model, "keepalive") == 0) keepalive = 1;
    else if (strcmp(model, "split") == 0) split = 1;
    else if (strcmp(model, "slow") == 0) delay = 200;
    else if ((ev = tool_events(model)) != NULL)
        shape = "tools";
    else if (strcmp(model, "hang") != 0 && strcmp(model, "truncated") != 0 &&
             strcmp(model, "badjson") != 0 && strcmp(model, "streamerror") != 0 &&
             strcmp(model, "ok") != 0)
        return send_error(conn, 404, "invalid_request_error", "model_not_found",
                          "The model `%s` does not exist or you do not have access to it.",
                          model);

    s = script_new(conn);
    if (strcmp(model, "hang") == 0) {
        s->ending = END_HANG;
        return send_script(conn, 200, "text/event-stream; charset=utf-8", s);
    }
    if (strcmp(shape, "tools") != 0) ev = chat_events(model, shape);
    upto = json_array_size(ev);
    if (strcmp(model, "truncated") == 0) upto = 4, done = 0, s->ending = END_CUT;
    if (strcmp(model, "badjson") == 0 || strcmp(model, "streamerror") == 0) upto = 3, done = 0;
    if (keepalive) script_add(s, ": ping\n\n", 8, 0);
    for (i = 0; i < upto; i++) {
        char *d = json_dumps(json_array_get(ev, i), multiline ? JSON_INDENT(2) : JSON_COMPACT);
        sse_append(&buf, &len, d, eol, multiline);
        free(d);
        if (!split) {
            script_add(s, buf, len, i ? delay : 0);
            len = 0;
        }
        if (keepalive) script_add(s, ": ping\n\n", 8, 0);
    }
    json_decref(ev);
    if (strcmp(model, "badjson") == 0)
        sse_append(&buf, &len, "{\"id\": \"chatcmpl-mock\", \"choices\": [{\"delta\": {\"con", eol, 0);
    if (strcmp(model, "streamerror") == 0)
        sse_append(&buf, &len,
                   "{\"error\": {\"message\": \"The model crashed while generating\", "
                   "\"type\": \"server_error\", \"code\": 500}}",
                   eol, 0);
    if (done) sse_append(&buf, &len, "[DONE]", eol, 0);
    if (split) {
        /* Pieces of 1-7 bytes from a fixed sequence: the cuts land inside
         * "data:", inside JSON strings and inside UTF-8 sequences. */
        unsigned x = 12345;
        for (size_t off = 0; off < len;) {
            size_t n;
            x = x * 1103515245u + 12345u;
            n = 1 + (x >> 16) % 7;
            if (n > len - off) n = len - off;
            script_add(s, buf + off, n, 1 + (x >> 8) % 2);
            off += n;
        }
    } else if (len) {
        script_add(s, buf, len, delay);
    }
    free(buf);
    return send_script(conn, 200, "text/event-stream; charset=utf-8", s);
}

/* ---------------------------------------------------------------- transcriptions */

typedef struct part {
    char *name, *filename, *ctype;
    char *data;
    size_t len;
} part;

/* One request being received. */
typedef struct req {
    char *body;
    size_t len;
    int too_big;
    struct MHD_PostProcessor *pp;
    part *parts;
    size_t n_parts;
} req;

static enum MHD_Result post_iter(void *cls, enum MHD_ValueKind kind, const char *key,
                                 const char *filename, const char *ctype, const char *enc,
                                 const char *data, uint64_t off, size_t size) {
    req *r = cls;
    part *p = r->n_parts ? &r->parts[r->n_parts - 1] : NULL;

    if (!p || off == 0 || strcmp(p->name, key) != 0) {
        if (!(r->parts = realloc(r->parts, (r->n_parts + 1) * sizeof(*r->parts)))) abort();
        p = &r->parts[r->n_parts++];
        memset(p, 0, sizeof(*p));
        p->name = strdup(key);
        p->filename = filename ? strdup(filename) : NULL;
        p->ctype = ctype ? strdup(ctype) : NULL;
    }
    if (size) {
        if (!(p->data = realloc(p->data, p->len + size + 1))) abort();
        memcpy(p->data + p->len, data, size);
        p->len += size;
        p->data[p->len] = '\0';
    }
    return MHD_YES;
}

static const part *form_get(const req *r, const char *name) {
    for (size_t i = 0; i < r->n_parts; i++)
        if (strcmp(r->parts[i].name, name) == 0) return &r->parts[i];
    return NULL;
}

/* The checks a strict server makes of an uploaded WAV. */
static json_t *wav_info(const unsigned char *w, size_t n) {
    unsigned long riff, fmt_rate = 0, byte_rate = 0, data_len = 0;
    long long sum = 0;
    unsigned fmt = 0, ch = 0, align = 0, bits = 0;
    size_t at = 12, data_at = 0;
    const char *why = NULL;

    if (n < 12 || memcmp(w, "RIFF", 4) != 0 || memcmp(w + 8, "WAVE", 4) != 0) {
        why = "not a RIFF/WAVE file";
        goto out;
    }
    riff = le32(w + 4);
    if (riff + 8 != n) {
        why = "the RIFF size does not match the file";
        goto out;
    }
    while (at + 8 <= n) {
        unsigned long sz = le32(w + at + 4);
        if (at + 8 + sz > n) {
            why = "a chunk runs past the end of the file";
            goto out;
        }
        if (memcmp(w + at, "fmt ", 4) == 0 && sz >= 16) {
            fmt = le16(w + at + 8);
            ch = le16(w + at + 10);
            fmt_rate = le32(w + at + 12);
            byte_rate = le32(w + at + 16);
            align = le16(w + at + 20);
            bits = le16(w + at + 22);
        } else if (memcmp(w + at, "data", 4) == 0) {
            data_at = at + 8;
            data_len = sz;
        }
        at += 8 + sz + (sz & 1);
    }
    if (!fmt) why = "no fmt chunk";
    else if (!data_at) why = "no data chunk";
    else if (fmt != 1 || bits != 16) why = "not 16-bit PCM";
    else if (align != ch * 2 || byte_rate != fmt_rate * align) why = "inconsistent fmt chunk";
    else if (data_len % align) why = "the data is not a whole number of frames";
    else
        for (size_t i = 0; i + 1 < data_len; i += 2) sum += (int16_t)le16(w + data_at + i);
out:
    return json_pack("{s:b, s:s?, s:I, s:I, s:I, s:I, s:I}", "valid", why == NULL, "error", why,
                     "rate", (json_int_t)fmt_rate, "channels", (json_int_t)ch, "bits",
                     (json_int_t)bits, "samples",
                     (json_int_t)(align ? data_len / align : 0), "sum", (json_int_t)sum);
}

static enum MHD_Result transcribe(struct MHD_Connection *conn, const req *r, json_t *rec) {
    const part *file = form_get(r, "file"), *model = form_get(r, "model");
    const part *fmt = form_get(r, "response_format");
    const char *m = model && model->data ? model->data : NULL;
    json_t *wav = json_object_get(rec, "wav");
    enum MHD_Result rc;
    char text[256];
    script *s;

    if (!file || !file->len)
        return send_error(conn, 400, "invalid_request_error", NULL, "No file was provided.");
    if (!m) return send_error(conn, 400, "invalid_request_error", NULL, "you must provide a model parameter");
    if (!json_is_true(json_object_get(wav, "valid")))
        return send_error(conn, 400, "invalid_request_error", NULL,
                          "Invalid file format: %s",
                          json_string_value(json_object_get(wav, "error")));
    if (fmt && fmt->data && strcmp(fmt->data, "json") != 0)
        return send_error(conn, 400, "invalid_request_error", NULL,
                          "this mock only answers response_format=json");
    if (canned_error(conn, m, &rc)) return rc;
    if (strcmp(m, "badjson") == 0) return send_text(conn, 200, "application/json", "{\"text\": ");
    if (strcmp(m, "notext") == 0)
        return send_json(conn, 200, json_pack("{s:s}", "transcript", "no text key"));
    if (strcmp(m, "count") == 0)
        snprintf(text, sizeof(text), "%lld samples at %lld Hz",
                 (long long)json_integer_value(json_object_get(wav, "samples")),
                 (long long)json_integer_value(json_object_get(wav, "rate")));
    else
        snprintf(text, sizeof(text), " Hello from the mock transcriber.");
    if (strcmp(m, "slow") != 0 && strcmp(m, "hang") != 0)
        return send_json(conn, 200, json_pack("{s:s}", "text", text));
    s = script_new(conn);
    if (strcmp(m, "hang") == 0) {
        s->ending = END_HANG;
    } else {
        char *d = json_dumps(json_pack("{s:s}", "text", text), JSON_COMPACT);
        script_add(s, d, strlen(d), 3000);
        free(d);
    }
    return send_script(conn, 200, "application/json", s);
}

/* ---------------------------------------------------------------- speech */

static enum MHD_Result speech(struct MHD_Connection *conn, json_t *body) {
    const char *model = json_string_value(json_object_get(body, "model"));
    const char *input = json_string_value(json_object_get(body, "input"));
    const char *voice = json_string_value(json_object_get(body, "voice"));
    const char *fmt = json_string_value(json_object_get(body, "response_format"));
    json_t *speed = json_object_get(body, "speed");
    size_t frames, bytes, step, i;
    unsigned delay = 0;
    unsigned char *pcm;
    enum MHD_Result rc;
    script *s;

    if (!model) return send_error(conn, 400, "invalid_request_error", NULL, "you must provide a model parameter");
    if (!input || !*input)
        return send_error(conn, 400, "invalid_request_error", NULL, "'input' must be a non-empty string");
    if (!voice || !*voice)
        return send_error(conn, 400, "invalid_request_error", NULL, "'voice' is required");
    if (!fmt || strcmp(fmt, "pcm") != 0)
        return send_error(conn, 400, "invalid_request_error", NULL,
                          "this mock only answers response_format=pcm");
    if (speed && (!json_is_number(speed) || json_number_value(speed) < 0.25 ||
                  json_number_value(speed) > 4.0))
        return send_error(conn, 400, "invalid_request_error", NULL, "'speed' must be 0.25-4.0");
    if (canned_error(conn, model, &rc)) return rc;
    if (strcmp(model, "jsonbody") == 0)
        return send_json(conn, 200, json_pack("{s:s}", "detail", "queued, poll later"));
    s = script_new(conn);
    if (strcmp(model, "hang") == 0) {
        s->ending = END_HANG;
        return send_script(conn, 200, "audio/pcm", s);
    }
    /* 50 ms of 24 kHz audio per character, samples ((i * 37) % 20000) -
     * 10000 so a test can check every one; odd-sized writes split samples. */
    frames = utf8_chars(input) * 1200;
    bytes = frames * 2;
    if (!(pcm = malloc(bytes ? bytes : 1))) abort();
    for (i = 0; i < frames; i++) {
        int v = (int)((i * 37) % 20000) - 10000;
        pcm[2 * i] = (unsigned char)(v & 0xff);
        pcm[2 * i + 1] = (unsigned char)((v >> 8) & 0xff);
    }
    step = 1001;
    if (strcmp(model, "slow") == 0) step = 4801, delay = 100;
    for (i = 0; i < bytes; i += step)
        script_add(s, (char *)pcm + i, bytes - i < step ? bytes - i : step, i ? delay : 0);
    free(pcm);
    return send_script(conn, 200, "audio/pcm", s);
}

/* ---------------------------------------------------------------- requests */

static enum MHD_Result add_header(void *cls, enum MHD_ValueKind kind, const char *key,
                                  const char *value) {
    char name[256];
    size_t i;

    for (i = 0; key[i] && i < sizeof(name) - 1; i++)
        name[i] = (char)(key[i] >= 'A' && key[i] <= 'Z' ? key[i] + 32 : key[i]);
    name[i] = '\0';
    json_object_set_new(cls, name, json_string(value ? value : ""));
    return MHD_YES;
}

/* The record of a complete request; the body parsed as JSON in *body. */
static json_t *record(struct MHD_Connection *conn, const char *method, const char *url, req *r,
                      json_t **body) {
    json_t *rec = json_pack("{s:s, s:s, s:{}}", "method", method, "path", url, "headers");
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);

    /* The client's port tells connections apart: a reused one keeps it. */
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        json_object_set_new(rec, "peer_port",
                            json_integer(ntohs(((struct sockaddr_in *)ci->client_addr)->sin_port)));
    MHD_get_connection_values(conn, MHD_HEADER_KIND, add_header, json_object_get(rec, "headers"));
    *body = NULL;
    if (r->pp) {
        json_t *form = json_object();
        const part *file = form_get(r, "file");
        for (size_t i = 0; i < r->n_parts; i++) {
            const part *p = &r->parts[i];
            json_t *o = json_pack("{s:s?, s:s?, s:I}", "filename", p->filename, "content_type",
                                  p->ctype, "size", (json_int_t)p->len);
            if (!p->filename && p->data) json_object_set_new(o, "value", json_string(p->data));
            json_object_set_new(form, p->name, o);
        }
        json_object_set_new(rec, "form", form);
        if (file)
            json_object_set_new(rec, "wav", wav_info((unsigned char *)file->data, file->len));
    } else if (r->len) {
        json_t *text = json_stringn(r->body, r->len); /* NULL unless UTF-8 */
        if (text) json_object_set_new(rec, "body", text);
        if ((*body = json_loadb(r->body, r->len, 0, NULL)) != NULL)
            json_object_set(rec, "json", *body);
    }
    return rec;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url,
                                  const char *method, const char *version, const char *data,
                                  size_t *size, void **con_cls) {
    req *r = *con_cls;
    json_t *rec, *body;
    enum MHD_Result rc;
    size_t ul = strlen(url);

    if (!r) {
        const char *ct = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Content-Type");
        if (!(r = calloc(1, sizeof(*r)))) return MHD_NO;
        if (ct && strncasecmp(ct, "multipart/form-data", 19) == 0)
            r->pp = MHD_create_post_processor(conn, 65536, post_iter, r);
        *con_cls = r;
        return MHD_YES;
    }
    if (*size) {
        if (r->len + *size > MOCK_BODY_MAX) {
            r->too_big = 1;
        } else {
            if (!(r->body = realloc(r->body, r->len + *size))) abort();
            memcpy(r->body + r->len, data, *size);
            r->len += *size;
            if (r->pp) MHD_post_process(r->pp, data, *size);
        }
        *size = 0;
        return MHD_YES;
    }
    if (strcmp(url, "/__requests") == 0) {
        pthread_mutex_lock(&log_mu);
        if (strcmp(method, "DELETE") == 0) json_array_clear(requests);
        rec = json_deep_copy(requests);
        pthread_mutex_unlock(&log_mu);
        return send_json(conn, 200, rec);
    }
    rec = record(conn, method, url, r, &body);
    pthread_mutex_lock(&log_mu);
    json_array_append(requests, rec);
    pthread_mutex_unlock(&log_mu);
    if (r->too_big)
        rc = send_error(conn, 413, "invalid_request_error", NULL, "request too large");
    else if (strcmp(method, "POST") != 0)
        rc = send_error(conn, 405, "invalid_request_error", NULL, "use POST");
    else if (ul >= 17 && strcmp(url + ul - 17, "/chat/completions") == 0)
        rc = body ? chat(conn, body)
                  : send_error(conn, 400, "invalid_request_error", NULL,
                               "We could not parse the JSON body of your request.");
    else if (ul >= 21 && strcmp(url + ul - 21, "/audio/transcriptions") == 0)
        rc = r->pp ? transcribe(conn, r, rec)
                   : send_error(conn, 400, "invalid_request_error", NULL,
                                "expected multipart/form-data");
    else if (ul >= 13 && strcmp(url + ul - 13, "/audio/speech") == 0)
        rc = body ? speech(conn, body)
                  : send_error(conn, 400, "invalid_request_error", NULL,
                               "We could not parse the JSON body of your request.");
    else
        rc = send_error(conn, 404, "invalid_request_error", NULL, "Invalid URL (%s %s)", method,
                        url);
    json_decref(body);
    json_decref(rec);
    return rc;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    req *r = *con_cls;

    if (!r) return;
    if (r->pp) MHD_destroy_post_processor(r->pp);
    for (size_t i = 0; i < r->n_parts; i++) {
        free(r->parts[i].name);
        free(r->parts[i].filename);
        free(r->parts[i].ctype);
        free(r->parts[i].data);
    }
    free(r->parts);
    free(r->body);
    free(r);
    *con_cls = NULL;
}

int main(int argc, char **argv) {
    struct sockaddr_in sa;
    struct MHD_Daemon *d;
    const union MHD_DaemonInfo *info;
    long port = argc > 1 ? strtol(argv[1], NULL, 10) : 0;
    sigset_t set;
    int sig;

    if (port < 0 || port > 65535) {
        fprintf(stderr, "usage: %s [PORT]\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    /* Every thread inherits the mask, so the signals reach sigwait below. */
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    requests = json_array();
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                         (uint16_t)port, NULL, NULL, on_request, NULL, MHD_OPTION_SOCK_ADDR, &sa,
                         MHD_OPTION_NOTIFY_COMPLETED, on_completed, NULL,
                         MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)120, MHD_OPTION_END);
    if (!d || !(info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT))) {
        fprintf(stderr, "mock_openai: cannot listen on 127.0.0.1:%ld\n", port);
        return 1;
    }
    printf("%u\n", (unsigned)info->port);
    fflush(stdout);
    sigwait(&set, &sig);
    /* Scripts may be sleeping in connection threads: leave without joining
     * them. */
    _exit(0);
}
