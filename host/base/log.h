/*
 * Logging to stdout, one line per event, in one of two formats:
 *
 *   text (default)  2026/05/15 12:34:56 INFO session started session_id=abc transport=websocket
 *   json            {"time":"2026-05-15T12:34:56.123Z","level":"info","msg":"session started","session_id":"abc",...}
 *
 * A message is a fixed text plus key/value fields. In text format a value
 * that is empty or holds a space, '=', '"', '\\' or a control character is
 * quoted and escaped, so user text can never break a line or forge a field.
 * Lines are written with a single write(2), so concurrent threads never
 * interleave within a line.
 *
 * Secrets: values registered with log_add_secret() are replaced by "***"
 * wherever they appear (message or field), and fields whose key names a
 * credential (password, secret, token, api_key, apikey, authorization) are
 * always printed as "***".
 *
 * Thread safety: all functions are safe from any thread; log_set_* are meant
 * for start-up and reload.
 */
#ifndef VOXRAY_LOG_H
#define VOXRAY_LOG_H

#include <stdarg.h>
#include <stddef.h>

#include <voxray/plugin.h> /* VX_LOG_DEBUG .. VX_LOG_ERROR */

/* "debug" | "info" | "warn" | "error" (also "warning") -> level, or -1. */
int log_level_parse(const char *s);
const char *log_level_name(int level);

void log_set_level(int level);
int log_get_level(void);
void log_set_json(int on);
/* [log] transcripts: what callers said and what the bot answered appear in
 * INFO lines only when on; otherwise only DEBUG lines carry them. */
void log_set_transcripts(int on);
int log_transcripts(void);
/* Redirect output (tests); fd 1 by default. */
void log_set_fd(int fd);

static inline int log_enabled(int level) { return level >= log_get_level(); }

/* Mask this value (copied; ignored if shorter than 4 bytes) in every later
 * line. */
void log_add_secret(const char *value);
/* Forget every registered secret (on reload / in tests). */
void log_clear_secrets(void);

/* Log msg with fields given as (const char *key, const char *value) pairs,
 * terminated by a NULL key. A NULL value prints as an empty string. */
void log_kv(int level, const char *msg, ...);
void log_vkv(int level, const char *msg, va_list ap);
/* Same, with the message formatted printf-style and no fields. */
void log_fmt(int level, const char *fmt, ...) VX_PRINTF(2, 3);
void log_vfmt(int level, const char *fmt, va_list ap);

#define log_debug(...) do { if (log_enabled(VX_LOG_DEBUG)) log_kv(VX_LOG_DEBUG, __VA_ARGS__, (const char *)NULL); } while (0)
#define log_info(...) log_kv(VX_LOG_INFO, __VA_ARGS__, (const char *)NULL)
#define log_warn(...) log_kv(VX_LOG_WARN, __VA_ARGS__, (const char *)NULL)
#define log_error(...) log_kv(VX_LOG_ERROR, __VA_ARGS__, (const char *)NULL)

/* Render one line without writing it (for tests): returns a malloc'd string
 * ending in '\n' that the caller frees, or NULL. `now` is a UNIX time in
 * milliseconds. */
char *log_format_line(int level, long long now_ms, const char *msg,
                      const char *const *kv, size_t n_kv);

#endif
