/*
 * libFuzzer target: what store_redis makes of Redis replies
 * (plugins/store_redis/reply.c). Arbitrary bytes, as a server (or whatever
 * answers on its port) might send them, go through hiredis' redisReader
 * as the plugin's connections read them; every reply it produces, and
 * every element of an array reply, is read as the answer to each command
 * of the store and to each step of a dial.
 *
 * Invariants checked:
 *   - the replies (and the protocol error, if any) are the same whether
 *     the bytes arrive at once, one by one or in pieces;
 *   - a reply is a success exactly when it is the type the command
 *     expects (GET a string, SET a status, DEL an integer, PING the status
 *     PONG), GET of nil is VX_ENOTFOUND, an error reply gives the code its
 *     first word stands for, anything else VX_EPROTO;
 *   - a success leaves err alone; a failure fills it: its code,
 *     retryable exactly for VX_EUNAVAIL, a message naming the server and,
 *     for an error reply, quoting it;
 *   - a dial fails on error replies only, with the code of its step.
 * hiredis 0.14 speaks RESP2 only: RESP3 types are protocol errors. It
 * allocates an array reply's element table as soon as it reads the count
 * ("*100000000" asks for 800 MB, untouched pages in a normal build, slow
 * under ASan), so counts above 65536 are not fed to it: a property of the
 * library, not of the plugin, which never expects an array.
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "reply.h"

#define ADDR "10.0.0.5:6379"
#define SENTINEL 12345

typedef struct sbuf {
    char *p;
    size_t len, cap;
} sbuf;

static void put(sbuf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n) cap *= 2;
        char *q = realloc(b->p, cap);
        if (q == NULL) abort();
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

/* A reply in a canonical form, to compare readings. */
static void describe(sbuf *b, const redisReply *r)
{
    char h[64];
    int n = snprintf(h, sizeof h, "(%d %lld %zu ", r->type, r->integer, r->type == REDIS_REPLY_ARRAY ? r->elements : r->len);
    put(b, h, (size_t)n);
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++) describe(b, r->element[i]);
    } else if (r->str) {
        put(b, r->str, r->len);
    }
    put(b, ")", 1);
}

static int starts(const char *s, const char *p)
{
    return strncmp(s, p, strlen(p)) == 0;
}

/* The code an error reply stands for, written apart from reply.c. */
static int want_error_code(const char *s)
{
    if (starts(s, "NOAUTH") || starts(s, "WRONGPASS") || starts(s, "NOPERM")) return VX_EAUTH;
    if (starts(s, "LOADING") || starts(s, "BUSY") || starts(s, "MASTERDOWN") || starts(s, "TRYAGAIN") ||
        starts(s, "READONLY"))
        return VX_EUNAVAIL;
    return VX_EPROTO;
}

static void check_err(const vx_error *e, int code)
{
    if (e->code != code || e->retryable != (code == VX_EUNAVAIL) || e->upstream_status != 0) abort();
    if (memchr(e->msg, '\0', sizeof e->msg) == NULL || !starts(e->msg, "redis " ADDR ": ")) abort();
}

static void check_reply(const redisReply *r, int depth)
{
    static const int expect[] = {REDIS_REPLY_STRING, REDIS_REPLY_STATUS, REDIS_REPLY_INTEGER, REDIS_REPLY_STATUS};
    if (depth > 16) abort();
    if (r->type < REDIS_REPLY_STRING || r->type > REDIS_REPLY_ERROR) abort();
    if ((r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS || r->type == REDIS_REPLY_ERROR) &&
        (r->str == NULL || r->str[r->len] != '\0'))
        abort();

    for (int cmd = RD_GET; cmd <= RD_PING; cmd++) {
        vx_error e;
        memset(&e, 0, sizeof e);
        e.code = SENTINEL;
        int rc = rd_reply(r, (rd_cmd)cmd, ADDR, &e), want;
        if (r->type == REDIS_REPLY_ERROR) want = want_error_code(r->str);
        else if (cmd == RD_GET && r->type == REDIS_REPLY_NIL) want = VX_ENOTFOUND;
        else if (r->type == expect[cmd] && (cmd != RD_PING || strcmp(r->str, "PONG") == 0)) want = VX_OK;
        else want = VX_EPROTO;
        if (rc != want) abort();
        if (rc == VX_OK) {
            if (e.code != SENTINEL || e.msg[0] != '\0') abort();
            continue;
        }
        check_err(&e, rc);
        if (r->type == REDIS_REPLY_ERROR) {
            char quoted[sizeof e.msg];
            snprintf(quoted, sizeof quoted, "redis " ADDR ": %.200s", r->str);
            if (strcmp(e.msg, quoted) != 0) abort();
        }
    }

    static const char *const steps[] = {"AUTH", "SELECT", "PING"};
    for (int i = 0; i < 3; i++) {
        char why[160];
        memset(why, 'x', sizeof why);
        int rc = rd_dial_reply(r, steps[i], 15, why, sizeof why), want = VX_OK;
        if (r->type == REDIS_REPLY_ERROR)
            want = i == 0 ? VX_EAUTH : i == 1 ? (want_error_code(r->str) == VX_EAUTH ? VX_EAUTH : VX_EPROTO)
                                              : want_error_code(r->str);
        if (rc != want || (rc != VX_OK && memchr(why, '\0', sizeof why) == NULL)) abort();
    }

    if (r->type == REDIS_REPLY_ARRAY)
        for (size_t i = 0; i < r->elements; i++) {
            if (r->element[i] == NULL) abort();
            check_reply(r->element[i], depth + 1);
        }
}

/* Read every reply of data, fed in pieces (step 0: at once, 1: byte by
 * byte, else up to step bytes); check each; describe them all, then the
 * reader's error. */
static void read_all(const uint8_t *data, size_t size, size_t step, uint32_t seed, int check, sbuf *out)
{
    redisReader *rd = redisReaderCreate();
    size_t i = 0;
    int failed = 0;
    if (rd == NULL) abort();
    while (i < size && !failed) {
        size_t n = size - i;
        if (step) {
            seed = seed * 1103515245u + 12345u;
            size_t want = 1 + (seed >> 16) % step;
            if (want < n) n = want;
        }
        if (redisReaderFeed(rd, (const char *)data + i, n) != REDIS_OK) abort();
        i += n;
        for (;;) {
            void *reply = NULL;
            if (redisReaderGetReply(rd, &reply) != REDIS_OK) {
                put(out, "ERR ", 4);
                put(out, rd->errstr, strlen(rd->errstr));
                failed = 1;
                break;
            }
            if (reply == NULL) break;
            if (check) check_reply(reply, 0);
            describe(out, reply);
            freeReplyObject(reply);
        }
    }
    redisReaderFree(rd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Whether data holds "*N" with N over 65536 anywhere. */
static int huge_array(const uint8_t *data, size_t size)
{
    for (size_t i = 0; i < size; i++) {
        if (data[i] != '*') continue;
        unsigned long long n = 0;
        size_t j = i + 1;
        while (j < size && data[j] >= '0' && data[j] <= '9' && n <= 65536) n = n * 10 + (data[j++] - '0');
        if (n > 65536) return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sbuf whole = {0}, pieces = {0};
    uint32_t seed = 2166136261u;

    if (huge_array(data, size)) return 0;
    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 16777619u;
    read_all(data, size, 0, seed, 1, &whole);
    read_all(data, size, size <= 512 ? 1 : 64, seed, 0, &pieces);
    if (whole.len != pieces.len || (whole.len && memcmp(whole.p, pieces.p, whole.len) != 0)) abort();
    free(whole.p);
    free(pieces.p);
    return 0;
}
