/*
 * What Redis replies mean for store_redis (see reply.h).
 */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "reply.h"

void rd_seterr(vx_error *err, int code, int retryable, const char *fmt, ...) {
    va_list ap;

    if (!err) return;
    err->code = code;
    err->retryable = retryable;
    err->upstream_status = 0;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
}

int rd_is_auth_reply(const char *s) {
    return strncmp(s, "NOAUTH", 6) == 0 || strncmp(s, "WRONGPASS", 9) == 0 ||
           strncmp(s, "NOPERM", 6) == 0;
}

int rd_is_transient_reply(const char *s) {
    return strncmp(s, "LOADING", 7) == 0 || strncmp(s, "BUSY", 4) == 0 ||
           strncmp(s, "MASTERDOWN", 10) == 0 || strncmp(s, "TRYAGAIN", 8) == 0 ||
           strncmp(s, "READONLY", 8) == 0;
}

int rd_error_code(const char *s) {
    return rd_is_auth_reply(s) ? VX_EAUTH : rd_is_transient_reply(s) ? VX_EUNAVAIL : VX_EPROTO;
}

int rd_reply(const redisReply *r, rd_cmd cmd, const char *addr, vx_error *err) {
    static const char *const names[] = {"GET", "SET", "DEL", "PING"};

    if (r->type == REDIS_REPLY_ERROR) {
        int code = rd_error_code(r->str);
        rd_seterr(err, code, code == VX_EUNAVAIL, "redis %s: %.200s", addr, r->str);
        return code;
    }
    switch (cmd) {
    case RD_GET:
        if (r->type == REDIS_REPLY_NIL) {
            rd_seterr(err, VX_ENOTFOUND, 0, "redis %s: no such key", addr);
            return VX_ENOTFOUND;
        }
        if (r->type == REDIS_REPLY_STRING) return VX_OK;
        break;
    case RD_SET:
        if (r->type == REDIS_REPLY_STATUS) return VX_OK;
        break;
    case RD_DEL:
        if (r->type == REDIS_REPLY_INTEGER) return VX_OK;
        break;
    case RD_PING:
        if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "PONG") == 0) return VX_OK;
        break;
    }
    rd_seterr(err, VX_EPROTO, 0, "redis %s: unexpected reply type %d to %s", addr, r->type,
              names[cmd]);
    return VX_EPROTO;
}

int rd_dial_reply(const redisReply *r, const char *step, int db, char *why, size_t len) {
    if (r->type != REDIS_REPLY_ERROR) return VX_OK;
    if (strcmp(step, "AUTH") == 0) {
        /* Any refusal of AUTH, including "no password is set", means the
         * configured credentials do not fit this server. */
        snprintf(why, len, "AUTH refused: %.120s", r->str);
        return VX_EAUTH;
    }
    if (strcmp(step, "SELECT") == 0) {
        snprintf(why, len, "SELECT %d refused: %.120s", db, r->str);
        return rd_is_auth_reply(r->str) ? VX_EAUTH : VX_EPROTO;
    }
    /* Also catches "NOAUTH" from a server that wants a password we lack. */
    snprintf(why, len, "%.150s", r->str);
    return rd_error_code(r->str);
}
