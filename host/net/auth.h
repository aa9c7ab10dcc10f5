/*
 * Who may open /v1/realtime and mint client secrets: API keys and ephemeral
 * client secrets.
 *
 * API keys come from [auth] api_keys and from [auth] keys_file (one key per
 * line, '#' comments). Auth is on as soon as either is configured: a keys
 * file that holds no key refuses everyone rather than letting everyone in.
 * A key is 16 to 512 token characters (letters, digits, !#$%&'*+-.^_`|~),
 * so that it can travel both as "Authorization: Bearer KEY" and inside the
 * WebSocket subprotocol "openai-insecure-api-key.KEY" browsers use.
 *
 * Keys are kept only as SHA-256 digests; a presented credential is hashed
 * and compared with every digest using CRYPTO_memcmp, so how long a check
 * takes says nothing about how much of a key was right (nor which key). At
 * most 10000 keys are taken: a check then costs about 0.15 ms (0.4 us with
 * one key).
 *
 * Client secrets ("ek_" and 64 hex digits from RAND_bytes) are minted by
 * POST /v1/realtime/client_secrets with a real key, expire after their TTL,
 * open one session each and may carry a session configuration that the
 * session they open starts with. They live in memory (at most
 * [auth] max_client_secrets usable at once); a used or expired one is
 * remembered a while longer so that a second try is told "reused" or
 * "expired" rather than "invalid".
 *
 * Nothing here ever logs a key or a secret.
 *
 * Thread safety: every function may be called from any thread.
 */
#ifndef VOXRAY_AUTH_H
#define VOXRAY_AUTH_H

#include <stddef.h>

#include "settings.h"

typedef struct metrics_registry metrics_registry;

typedef enum auth_result {
    AUTH_OK = 0,
    AUTH_MISSING, /* no credential presented */
    AUTH_INVALID, /* not a key, not a secret we know */
    AUTH_EXPIRED, /* a client secret past its expiry */
    AUTH_REUSED   /* a client secret that already opened a session */
} auth_result;

#define AUTH_SECRET_LEN 67 /* "ek_" + 64 hex digits */

/* Register voxray_auth_failures_total{reason} and
 * voxray_client_secrets_created_total. Call once before auth_load. */
int auth_metrics_init(metrics_registry *reg);

/* Read the keys of s ([auth] api_keys, then keys_file) and the client
 * secret limits, and make them the ones in force. Returns 0, or -1 with one
 * line in err (naming the file and line of a bad key, never the key) and the
 * keys in force left as they were. Used at start and on SIGHUP. */
int auth_load(const settings *s, char *err, size_t errlen);

/* Same checks as auth_load, nothing changed (--check-config). */
int auth_check_settings(const settings *s, char *err, size_t errlen);

/* Whether any key source is configured. */
int auth_enabled(void);

/* The credential a request carries, into out: the token of
 * "Authorization: Bearer TOKEN" if that header is given (authorization may
 * be NULL), else the KEY of an "openai-insecure-api-key.KEY" element of the
 * Sec-WebSocket-Protocol list (subprotocols may be NULL). Returns 1 when one
 * was found, 0 otherwise (out is ""). A credential that does not fit in
 * len bytes is returned cut, and so fails to match. */
int auth_credential(const char *authorization, const char *subprotocols, char *out, size_t len);

/* Whether cred is one of the API keys (client secrets do not count: a
 * secret cannot mint secrets). AUTH_OK or AUTH_MISSING / AUTH_INVALID. */
auth_result auth_check_key(const char *cred);

/* Check cred for opening a realtime session: an API key, or a client secret,
 * which this uses up. On AUTH_OK, *session is the secret's session
 * configuration (a JSON object text, malloc'd; the caller frees it) or NULL
 * when there is none (an API key, a secret minted without one). */
auth_result auth_redeem(const char *cred, char **session);

/* Mint a client secret living ttl_s seconds (already validated, at most
 * client_secret_max_ttl: the caller clamps with auth_max_ttl_s()), bound to
 * session (a JSON object text, copied; NULL for none). Writes the value
 * (AUTH_SECRET_LEN + 1 bytes) and its expiry in UNIX seconds. Returns 0,
 * -1 when max_client_secrets are outstanding, -2 when out of memory or
 * randomness. */
int auth_mint(long long ttl_s, const char *session, char *value, size_t len, long long *expires_at);
/* [auth] client_secret_max_ttl in seconds (rounded down, at least 1). */
long long auth_max_ttl_s(void);

/* "missing", "invalid", "expired", "reused" ("ok" for AUTH_OK). */
const char *auth_reason(auth_result r);
/* Count a refusal in voxray_auth_failures_total{reason} and log it (route
 * and client address, never the credential). Logging is limited to a few
 * lines a second; the next line says how many were left out. */
void auth_refused(auth_result r, const char *route, const char *client);

/* Forget every key and secret (at exit). */
void auth_free(void);

#endif
