/*
 * oai_client: the HTTP side shared by the three OpenAI-compatible plugins
 * (llm_openai, stt_openai, tts_openai). Each plugin links its own copy
 * (a libtool convenience library), so nothing here is shared at run time.
 *
 * Threading model
 *   One instance owns one oai_client: a curl multi handle driven by one
 *   thread. A request (oai_call) is prepared on the caller's thread, queued,
 *   and from then on only the driver thread touches its curl handle. All of
 *   a call's callbacks (ops->body, ops->end) run on the driver thread, so a
 *   plugin delivers every event of an HTTP-backed stream from there. The
 *   multi handle keeps a connection cache, so consecutive requests of an
 *   instance reuse a warm (TLS) connection, and HTTP/2 multiplexes them.
 *   cancel() and close() wake the driver with curl_multi_wakeup(), so a
 *   stuck transfer stops at once rather than at the next progress tick.
 *
 * Lifetime of a call
 *   oai_call_new -> oai_call_json / oai_call_form -> oai_call_start; then
 *   exactly one ops->end, unless oai_call_close() came first. close()
 *   waits until the driver has let go of the call (no callback can run any
 *   more) and frees it; called on the driver thread itself (from inside a
 *   callback) it cannot wait, so the driver frees the call once its current
 *   callback returns.
 */
#ifndef VX_OAI_CLIENT_H
#define VX_OAI_CLIENT_H

#include <stddef.h>

#include <curl/curl.h>
#include <jansson.h>
#include <voxray/plugin.h>

#define OAI_DEFAULT_BASE_URL "https://api.openai.com/v1"
#define OAI_DEFAULT_KEY_ENV "OPENAI_API_KEY"

/* The schema entries every OpenAI-compatible plugin declares, first in its
 * table. model_def and timeout_def are the plugin's own defaults. */
#define OAI_CONFIG_KEYS(model_def, timeout_def)                                               \
    {"base_url", VX_CFG_STRING, OAI_DEFAULT_BASE_URL,                                         \
     "API root up to and including /v1 (vLLM, llama.cpp, Ollama: http://host:port/v1)", 0,    \
     2048, NULL, 0},                                                                           \
        {"api_key_env", VX_CFG_STRING, OAI_DEFAULT_KEY_ENV,                                   \
         "environment variable holding the API key; an empty or unset key sends no "         \
         "Authorization header (local servers accept that)",                                  \
         0, 256, NULL, 0},                                                                     \
        {"api_key", VX_CFG_STRING, "",                                                         \
         "the API key itself (discouraged: prefer api_key_env, which wins when set)", 0,      \
         4096, NULL, VX_CFG_SECRET},                                                           \
        {"model", VX_CFG_STRING, model_def, "model name sent with every request", 0, 256,     \
         NULL, 0},                                                                             \
        {"timeout", VX_CFG_DURATION, timeout_def, "limit for a whole request, response included", \
         1, 3600000, NULL, 0},                                                                 \
        {"connect_timeout", VX_CFG_DURATION, "3s", "limit for connecting (TCP and TLS)", 1,    \
         600000, NULL, 0}

/* The common keys, parsed. Read-only after oai_conf_load. */
typedef struct oai_conf {
    const char *plugin; /* "llm_openai": prefix of error messages */
    char *base_url;     /* without trailing '/' */
    char *api_key_env;
    char *api_key;
    char *model;
    long timeout_ms;
    long connect_timeout_ms;
} oai_conf;

typedef struct oai_client oai_client;
typedef struct oai_call oai_call;

/* What a plugin does with one call's response. Both run on the driver
 * thread and must not block. */
typedef struct oai_call_ops {
    /* Body bytes of a 2xx response, in arrival order (a read may end
     * anywhere, even inside a UTF-8 sequence). Return 0 to go on; return a
     * VX_E* code with err filled to abort the transfer and end the call with
     * that error. */
    int (*body)(void *ctx, const char *p, size_t n, vx_error *err);
    /* The call is over: err->code is VX_OK when a 2xx response arrived
     * whole, otherwise the failure (HTTP status, transport, VX_ECANCELED,
     * or what body returned). Called once; no callback of the call follows. */
    void (*end)(void *ctx, const vx_error *err);
} oai_call_ops;

/* ---- configuration helpers (all return 0 or -1) */

/* The value of key in cfg, else its default in schema, else "". */
const char *oai_cfg(const vx_config *cfg, const vx_config_key *schema, const char *key);
/* The host has the typed config getters the plugins read their settings
 * with (ABI 1.6): 1, or 0. */
int oai_host_ok(const vx_host_api *host);
/* An integer setting, and a duration in ms, as the host parsed them. */
int oai_cfg_long(const vx_host_api *host, vx_host *h, const char *key, long *out);
int oai_cfg_ms(const vx_host_api *host, vx_host *h, const char *key, long *ms);

/* Read the common keys (strings from cfg, numbers through the host's typed
 * getters for h). Fails with VX_EINVAL naming the bad key, or VX_ENOMEM;
 * cf then holds nothing to free. */
int oai_conf_load(oai_conf *cf, const char *plugin, const vx_host_api *host, vx_host *h,
                  const vx_config *cfg, const vx_config_key *schema, vx_error *err);
void oai_conf_free(oai_conf *cf);
/* One line for the start-up log: URL, model, where the key comes from (never
 * the key itself). */
void oai_conf_describe(const oai_conf *cf, char *buf, size_t len);

/* ---- errors */

void oai_seterr(vx_error *err, int code, int retryable, int status, const char *fmt, ...)
    VX_PRINTF(5, 6);
/* The code and retryability an HTTP status maps to (429 rate limit, 5xx
 * unavailable, 401/403 auth, other 4xx invalid). */
void oai_status_error(vx_error *err, long status);
/* The server's own message from an OpenAI-style error body
 * ({"error": {"message"}}, {"error": "..."}, {"message"}, {"detail"}), or
 * NULL. Points into j. */
const char *oai_error_message(const json_t *j);
/* The failure an HTTP error answer amounts to: the code of its status and
 * "PLUGIN: HTTP STATUS: MESSAGE", the message being the server's own from a
 * JSON error body, or the start of any other body on one line (control
 * characters blanked). body may be NULL when len is 0. */
void oai_error_body(vx_error *err, const char *plugin, long status, const char *body,
                    size_t len);
/* Replace every occurrence of key in msg (NUL-terminated) by "***", and
 * the start of the key where a message cut to size ends in it. Keys
 * shorter than 4 bytes are placeholders local servers ignore, and
 * scrubbing them would mangle ordinary words. Every failure of a call goes
 * through this before it reaches the plugin. */
void oai_scrub(char *msg, const char *key);

/* ---- the client */

/* Start the driver thread of an instance (and libcurl, once per process).
 * Fails with VX_ENOMEM when curl or the thread cannot be set up. */
int oai_client_new(const vx_host_api *api, vx_host *h, const oai_conf *cf, oai_client **out,
                   vx_error *err);
/* Stop the driver. No call may be open. */
void oai_client_free(oai_client *c);
/* "N requests, M failed" plus the last failure, for the health probe. */
int oai_client_health(oai_client *c, char *buf, size_t len);

/* ---- calls */

/* A POST to base_url + path (e.g. "/chat/completions") with the API key of
 * the moment (the environment variable is read now, so a rotated key is
 * picked up by the next request). ctx is handed back to ops. Fails with
 * VX_ENOMEM. */
int oai_call_new(oai_client *c, const char *path, const oai_call_ops *ops, void *ctx,
                 oai_call **out, vx_error *err);
/* The request body: JSON (sent compact, Content-Type application/json), or
 * a multipart form the caller fills (owned by the call). Before start only. */
int oai_call_json(oai_call *k, const json_t *body, vx_error *err);
curl_mime *oai_call_form(oai_call *k);
/* An extra request header ("Accept: text/event-stream"). Before start only. */
int oai_call_header(oai_call *k, const char *line, vx_error *err);
/* Hand the call to the driver. Never fails once the call is built; events
 * may fire before it returns. */
void oai_call_start(oai_call *k);
/* End the call with VX_ECANCELED unless it has ended already. Idempotent,
 * any thread, never blocks for long. */
void oai_call_cancel(oai_call *k);
/* Stop the call without any further callback and free it (see above). */
void oai_call_close(oai_call *k);
/* The response's Content-Type ("" when none); valid inside ops->body. */
const char *oai_call_content_type(oai_call *k);

#endif
