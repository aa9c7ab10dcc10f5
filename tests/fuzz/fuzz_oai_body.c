/*
 * libFuzzer target: the bodies OpenAI-compatible servers answer with, as
 * the three OpenAI plugins read them: an HTTP error answer (oai_error_body
 * then oai_scrub, plugins/llm_openai/oai_client.c; all three plugins), a
 * transcription answer (stt_transcript, plugins/stt_openai/transcript.c)
 * and raw speech audio (pcm16_take and pcm16_playable,
 * plugins/tts_openai/pcm.c).
 *
 * The first byte picks the HTTP status of the error answer; the rest is
 * the body, used for all three.
 *
 * Invariants checked:
 *   - an error answer gets the code of its status (429 rate limit, 401/403
 *     auth, 504 timeout, other 5xx unavailable, other 4xx invalid, the
 *     rest a protocol error), retryable exactly for 429 and 5xx, and one
 *     message "PLUGIN: HTTP STATUS..." that quotes a non-JSON body without
 *     control characters;
 *   - once scrubbed, a message never holds the API key, nor ends in more
 *     than three bytes of its start (keys taken from the message itself);
 *   - a transcript is the answer's "text" with the blanks around it
 *     trimmed; without one the failure names the plugin;
 *   - audio decodes to the same samples, every byte pair little-endian,
 *     however the body is cut; a body of odd length keeps its last byte;
 *   - a Content-Type is refused exactly when it starts with
 *     application/json or text/ (any case).
 */
#include "config.h"

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "oai_client.h"
#include "pcm.h"
#include "transcript.h"

#define KEY "sk-proj-fuzz0123456789abcdef"

static const long statuses[] = {400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503,
                                504, 520, 599, 301, 204, 100, 0,   600, 1,   499, 418, -1};

static void want_code(long status, int *code, int *retry)
{
    if (status == 429) *code = VX_ERATELIMIT, *retry = 1;
    else if (status == 401 || status == 403) *code = VX_EAUTH, *retry = 0;
    else if (status == 504) *code = VX_ETIMEDOUT, *retry = 1;
    else if (status >= 500 && status <= 599) *code = VX_EUNAVAIL, *retry = 1;
    else if (status >= 400 && status <= 499) *code = VX_EINVAL, *retry = 0;
    else *code = VX_EPROTO, *retry = 0;
}

/* After oai_scrub: no key, no start of one (4 bytes or more) at the end. */
static void scrubbed(const char *msg, const char *key)
{
    size_t kl = strlen(key), ml = strlen(msg);
    if (kl < 4) return;
    if (strstr(msg, key) != NULL) abort();
    for (size_t l = 4; l < kl && l <= ml; l++)
        if (memcmp(msg + ml - l, key, l) == 0) abort();
}

static void check_error(long status, const char *body, size_t len)
{
    vx_error e;
    int code, retry;
    char head[64];

    memset(&e, 0, sizeof e);
    oai_error_body(&e, "llm_openai", status, len ? body : NULL, len);
    want_code(status, &code, &retry);
    if (e.code != code || e.retryable != retry || e.upstream_status != (int)status) abort();
    if (memchr(e.msg, '\0', sizeof e.msg) == NULL) abort();
    int hn = snprintf(head, sizeof head, "llm_openai: HTTP %ld", status);
    if (strncmp(e.msg, head, (size_t)hn) != 0) abort();
    json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
    if (j == NULL && len) /* the body's start, on one line */
        for (const unsigned char *p = (const unsigned char *)e.msg; *p; p++)
            if (*p < 0x20 || *p == 0x7f) abort();
    json_decref(j);

    /* The key, wherever it is; then keys cut out of the message itself. */
    vx_error k = e;
    oai_scrub(k.msg, KEY);
    scrubbed(k.msg, KEY);
    size_t ml = strlen(e.msg);
    for (size_t off = 0; off + 4 <= ml; off += 7) {
        char key[24];
        size_t kl = ml - off < 16 ? ml - off : 4 + (off + len) % 12;
        memcpy(key, e.msg + off, kl);
        key[kl] = '\0';
        if (strchr(key, '*')) continue; /* real keys have none; "***" is the mask */
        k = e;
        oai_scrub(k.msg, key);
        scrubbed(k.msg, key);
    }
}

static void check_transcript(const char *body, size_t len)
{
    vx_error e;
    memset(&e, 0, sizeof e);
    char *t = stt_transcript(body, len, &e);
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *text = json_string_value(json_object_get(j, "text"));
    if (t == NULL) {
        if (text != NULL || e.code != VX_EPROTO || strncmp(e.msg, "stt_openai: ", 12) != 0 ||
            memchr(e.msg, '\0', sizeof e.msg) == NULL)
            abort();
    } else {
        size_t n = strlen(t);
        if (text == NULL || strstr(text, t) == NULL) abort();
        if (n && (isspace((unsigned char)t[0]) || isspace((unsigned char)t[n - 1]))) abort();
        /* Only blanks were cut away. */
        size_t lead = 0, tl = strlen(text);
        while (lead < tl && isspace((unsigned char)text[lead])) lead++;
        if (strncmp(text + lead, t, n) != 0) abort();
        for (size_t i = lead + n; i < tl; i++)
            if (!isspace((unsigned char)text[i])) abort();
        free(t);
    }
    json_decref(j);
}

static void check_pcm(const unsigned char *b, size_t len, uint32_t seed)
{
    int16_t *out = malloc((len / 2 + 2) * sizeof *out);
    pcm16 p = {0};
    size_t got = 0, i = 0;
    if (out == NULL) abort();
    while (i < len) {
        seed = seed * 1103515245u + 12345u;
        size_t n = 1 + (seed >> 16) % 7;
        if (n > len - i) n = len - i;
        got += pcm16_take(&p, b + i, n, out + got);
        i += n;
    }
    if (got != len / 2 || p.has_odd != (int)(len & 1) || (p.has_odd && p.odd != b[len - 1])) abort();
    for (size_t k = 0; k < got; k++)
        if (out[k] != (int16_t)(uint16_t)(b[2 * k] | b[2 * k + 1] << 8)) abort();
    free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    long status = statuses[data[0] % (sizeof statuses / sizeof statuses[0])];
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    uint32_t seed = 2166136261u;
    for (size_t i = 0; i < size; i++) seed = (seed ^ data[i]) * 16777619u;

    check_error(status, body, len);
    check_transcript(body, len);
    check_pcm((const unsigned char *)body, len, seed);

    char *ct = malloc(len + 1);
    if (ct == NULL) abort();
    memcpy(ct, body, len);
    ct[len] = '\0';
    char low[17] = "";
    for (size_t i = 0; i < 16 && i < len && ct[i]; i++) low[i] = (char)tolower((unsigned char)ct[i]);
    int refused = strncmp(low, "application/json", 16) == 0 || strncmp(low, "text/", 5) == 0;
    if (pcm16_playable(ct) == refused) abort();
    free(ct);
    return 0;
}
