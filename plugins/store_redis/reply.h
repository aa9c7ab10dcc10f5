/*
 * What Redis replies mean for store_redis: the plugin's reading of every
 * reply, apart from connections and the host, so that it can be checked on
 * any reply hiredis can produce.
 */
#ifndef VX_STORE_REDIS_REPLY_H
#define VX_STORE_REDIS_REPLY_H

#include <stddef.h>

#include <hiredis/hiredis.h>
#include <voxray/plugin.h>

/* The commands of the store. */
typedef enum rd_cmd { RD_GET, RD_SET, RD_DEL, RD_PING } rd_cmd;

/* Fill err (code, retryable, no upstream status, formatted message). NULL
 * err: nothing. */
void rd_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) VX_PRINTF(4, 5);

/* Error replies that mean the credentials were refused (NOAUTH, WRONGPASS,
 * NOPERM). */
int rd_is_auth_reply(const char *s);
/* Error replies of a server temporarily unable to serve (LOADING, BUSY,
 * MASTERDOWN, TRYAGAIN, READONLY). */
int rd_is_transient_reply(const char *s);
/* The code an error reply stands for: VX_EAUTH, VX_EUNAVAIL (the two
 * above) or VX_EPROTO. */
int rd_error_code(const char *s);

/* Reply r to cmd, sent to the store at addr (for messages):
 *   VX_OK        the answer expected (GET: a string, SET: a status, DEL: an
 *                integer, PING: the status PONG); err untouched;
 *   VX_ENOTFOUND GET of a key that does not exist (nil);
 *   rd_error_code() of an error reply ("redis ADDR: TEXT");
 *   VX_EPROTO    any other reply ("unexpected reply type N to CMD").
 * err is filled on every failure; VX_EUNAVAIL is retryable. r is not
 * freed. */
int rd_reply(const redisReply *r, rd_cmd cmd, const char *addr, vx_error *err);

/* A reply while dialling, to "AUTH", "SELECT" (of database db) or "PING":
 * VX_OK for anything but an error reply; otherwise the failure's code with
 * the reason in why: every refused AUTH is VX_EAUTH, a refused SELECT
 * VX_EAUTH or VX_EPROTO, a refused PING rd_error_code(). */
int rd_dial_reply(const redisReply *r, const char *step, int db, char *why, size_t len);

#endif
