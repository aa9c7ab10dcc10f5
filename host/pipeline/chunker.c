/*
 * Sentence chunker for streaming TTS (see chunker.h for the contract).
 *
 * The pending text lives in one growable buffer that always starts at the
 * beginning of a piece (leading whitespace is dropped on arrival). A scan
 * cursor walks it one UTF-8 character at a time; every decision is a pure
 * function of the text, and when a decision needs text that has not arrived
 * yet (the character after a '.', the rest of a multi-byte character, the
 * word after "No.") the scan stops there and resumes on the next push. That
 * is what makes the pieces independent of how the text was split into
 * tokens: feeding one byte at a time gives the same pieces as feeding
 * everything at once.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "pipeline/chunker.h"

#define CK_MIN_DEFAULT 12
#define CK_MAX_DEFAULT 200

typedef void (*ck_cb)(void *user, const char *piece);

struct chunker {
    char *buf;
    size_t len;    /* pending bytes */
    size_t cap;    /* allocated; always > len so a piece can be NUL-terminated in place */
    size_t scan;   /* bytes before this are decided: no piece ends inside them */
    size_t nchars; /* characters in buf[0..scan) */
    size_t min_chars;
    size_t max_chars;
};

enum { CK_MORE, CK_WAIT, CK_PIECE };

static int ck_space(unsigned char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* Length of the UTF-8 character at p (avail bytes there). *partial is set
 * when the character is cut off by the end of the buffer. Malformed bytes
 * count as one-byte characters so garbage cannot stall the scan. */
static size_t ck_char(const unsigned char *p, size_t avail, int *partial)
{
    size_t want, i;

    *partial = 0;
    if (p[0] < 0x80) return 1;
    else if (p[0] >= 0xC2 && p[0] <= 0xDF) want = 2;
    else if (p[0] >= 0xE0 && p[0] <= 0xEF) want = 3;
    else if (p[0] >= 0xF0 && p[0] <= 0xF4) want = 4;
    else return 1;
    for (i = 1; i < want; i++) {
        if (i >= avail) {
            *partial = 1;
            return avail;
        }
        if ((p[i] & 0xC0) != 0x80) return 1;
    }
    return want;
}

static size_t ck_count(const char *s, size_t n)
{
    size_t i, k = 0;
    for (i = 0; i < n; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80) k++;
    return k;
}

/* Byte length of the sentence terminator at p, 0 if none. */
static size_t ck_term(const unsigned char *p, size_t avail)
{
    if (p[0] == '.' || p[0] == '!' || p[0] == '?') return 1;
    if (avail >= 3 && p[0] == 0xE2 && p[1] == 0x80 && p[2] == 0xA6) return 3; /* … */
    return 0;
}

/* Byte length of a closing quote or bracket at p, 0 if none. */
static size_t ck_closer(const unsigned char *p, size_t avail)
{
    if (p[0] == '"' || p[0] == '\'' || p[0] == ')' || p[0] == ']') return 1;
    if (avail >= 2 && p[0] == 0xC2 && p[1] == 0xBB) return 2;                   /* » */
    if (avail >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0x9D || p[2] == 0x99))
        return 3;                                                                 /* ” ’ */
    return 0;
}

/* Byte length of an opening quote or bracket at p, 0 if none. */
static size_t ck_opener(const unsigned char *p, size_t avail)
{
    if (p[0] == '"' || p[0] == '\'' || p[0] == '(' || p[0] == '[') return 1;
    if (avail >= 2 && p[0] == 0xC2 && p[1] == 0xAB) return 2;                   /* « */
    if (avail >= 3 && p[0] == 0xE2 && p[1] == 0x80 && (p[2] == 0x9C || p[2] == 0x98))
        return 3;                                                                 /* “ ‘ */
    return 0;
}

/* Is the word w[0..n) (what precedes a lone '.') an abbreviation that does
 * not end a sentence? "No" needs the next word: *needs_digit asks the
 * caller to check that it starts with a digit. */
static int ck_abbrev(const unsigned char *w, size_t n, int *needs_digit)
{
    static const char *const list[] = {
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc",
        "e.g", "i.e", "u.s", "a.m", "p.m",
    };
    char low[8];
    size_t i, k;

    *needs_digit = 0;
    for (;;) { /* "(Dr." and "“Mr." */
        k = n ? ck_opener(w, n) : 0;
        if (!k) break;
        w += k;
        n -= k;
    }
    if (n == 1 && w[0] >= 'A' && w[0] <= 'Z') return 1; /* initial: "J. Smith" */
    if (n == 0 || n >= sizeof low) return 0;
    for (i = 0; i < n; i++)
        low[i] = (char)(w[i] >= 'A' && w[i] <= 'Z' ? w[i] + ('a' - 'A') : w[i]);
    low[n] = '\0';
    if (strcmp(low, "no") == 0) {
        *needs_digit = 1;
        return 1;
    }
    for (i = 0; i < sizeof list / sizeof *list; i++)
        if (strcmp(low, list[i]) == 0) return 1;
    return 0;
}

/* Characters of buf[0..b) once trailing whitespace is trimmed. */
static size_t ck_trimmed_chars(const char *buf, size_t b)
{
    while (b > 0 && ck_space((unsigned char)buf[b - 1])) b--;
    return ck_count(buf, b);
}

/* The text has reached max_chars characters without a sentence end: choose
 * where to cut within those characters. A clause mark (',', ';', ':'
 * followed by whitespace) in the second half wins, else the last
 * whitespace (the one right after the window included), else the character
 * limit itself. Returns the cut offset. */
static size_t ck_cut(const chunker *c)
{
    const unsigned char *b = (const unsigned char *)c->buf;
    size_t i = 0, k = 0, lim, clause = 0, space = 0;
    int partial;

    while (k < c->max_chars && i < c->len) {
        if ((b[i] == ',' || b[i] == ';' || b[i] == ':') && i + 1 < c->len &&
            ck_space(b[i + 1]) && k >= c->max_chars / 2)
            clause = i + 1;
        if (ck_space(b[i]) && i > 0) space = i;
        i += ck_char(b + i, c->len - i, &partial);
        k++;
    }
    lim = i;
    if (lim < c->len && ck_space(b[lim])) space = lim; /* the window ends on a word end */
    if (clause) return clause;
    if (space) return space;
    return lim;
}

/* Walk from the scan cursor. CK_PIECE: a piece is buf[0..*end) (untrimmed).
 * CK_WAIT: a decision needs more text. CK_MORE: everything was scanned.
 * With `final`, the end of the buffer is the end of the input. */
static int ck_scan(chunker *c, int final, size_t *end)
{
    const unsigned char *b = (const unsigned char *)c->buf;
    size_t i = c->scan, k = c->nchars, len = c->len;
    int rc = CK_MORE, partial;

    while (i < len) {
        size_t step, e, f, t;
        int dots = 0, ell = 0, strong = 0, boundary;

        if (k >= c->max_chars) {
            *end = ck_cut(c);
            rc = CK_PIECE;
            goto out;
        }
        step = ck_char(b + i, len - i, &partial);
        if (partial && !final) {
            rc = CK_WAIT;
            goto out;
        }
        if (b[i] == '\n') {
            if (ck_trimmed_chars(c->buf, i + 1) >= c->min_chars) {
                *end = i + 1;
                rc = CK_PIECE;
                goto out;
            }
            i += 1;
            k += 1;
            continue;
        }
        if (!ck_term(b + i, len - i)) {
            i += step;
            k += 1;
            continue;
        }

        /* A run of terminators, then closing quotes/brackets, then the
         * character that decides: whitespace (or the end, when final). */
        for (e = i; e < len; e += t) {
            ck_char(b + e, len - e, &partial);
            if (partial && !final) {
                rc = CK_WAIT;
                goto out;
            }
            t = ck_term(b + e, len - e);
            if (!t) break;
            if (b[e] == '.') dots++;
            else if (t == 3) ell = 1;
            else strong = 1;
        }
        for (f = e; f < len; f += t) {
            ck_char(b + f, len - f, &partial);
            if (partial && !final) {
                rc = CK_WAIT;
                goto out;
            }
            t = ck_closer(b + f, len - f);
            if (!t) break;
        }
        if (f == len && !final) {
            rc = CK_WAIT;
            goto out;
        }
        boundary = f == len || ck_space(b[f]);
        if (boundary && !strong) {
            if (ell || dots >= 2) {
                boundary = 0; /* an ellipsis trails off; the sentence goes on */
            } else {
                size_t w = i;
                int needs_digit;
                while (w > 0 && !ck_space(b[w - 1])) w--;
                if (ck_abbrev(b + w, i - w, &needs_digit)) {
                    boundary = 0;
                    if (needs_digit) { /* "No. 5" but "No. I won't." */
                        size_t g = f;
                        while (g < len && ck_space(b[g])) g++;
                        if (g == len && !final) {
                            rc = CK_WAIT;
                            goto out;
                        }
                        boundary = !(g < len && b[g] >= '0' && b[g] <= '9');
                    }
                }
            }
        }
        if (boundary && ck_trimmed_chars(c->buf, f) >= c->min_chars) {
            *end = f;
            rc = CK_PIECE;
            goto out;
        }
        k += ck_count(c->buf + i, f - i);
        i = f;
    }

out:
    c->scan = i;
    c->nchars = k;
    return rc;
}

static void ck_drop(chunker *c, size_t n)
{
    while (n < c->len && ck_space((unsigned char)c->buf[n])) n++;
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->scan = 0;
    c->nchars = 0;
}

/* Hand buf[0..end) to cb, trimmed, NUL-terminated in place; nothing if it
 * is only whitespace. */
static void ck_emit(chunker *c, size_t end, ck_cb cb, void *user)
{
    char saved;

    while (end > 0 && ck_space((unsigned char)c->buf[end - 1])) end--;
    if (end == 0 || !cb) return;
    saved = c->buf[end];
    c->buf[end] = '\0';
    cb(user, c->buf);
    c->buf[end] = saved;
}

static void ck_run(chunker *c, int final, ck_cb cb, void *user)
{
    size_t end;

    if (c->scan == 0) ck_drop(c, 0);
    while (ck_scan(c, final, &end) == CK_PIECE) {
        ck_emit(c, end, cb, user);
        ck_drop(c, end);
    }
}

chunker *chunker_new(size_t min_chars, size_t max_chars)
{
    chunker *c = calloc(1, sizeof *c);
    if (!c) goto fail;
    c->min_chars = min_chars ? min_chars : CK_MIN_DEFAULT;
    c->max_chars = max_chars ? max_chars : CK_MAX_DEFAULT;
    if (c->max_chars < c->min_chars) c->max_chars = c->min_chars;
    /* Room for a long piece of multi-byte text without growing. */
    c->cap = 4 * c->max_chars + 64;
    c->buf = malloc(c->cap);
    if (!c->buf) goto fail;
    return c;

fail:
    chunker_free(c);
    return NULL;
}

void chunker_free(chunker *c)
{
    if (!c) return;
    free(c->buf);
    free(c);
}

int chunker_push(chunker *c, const char *text, size_t len, ck_cb cb, void *user)
{
    if (len >= c->cap - c->len) {
        size_t ncap = c->cap;
        char *nbuf;
        while (len >= ncap - c->len) {
            if (ncap > ((size_t)-1) / 2) return -1;
            ncap *= 2;
        }
        nbuf = realloc(c->buf, ncap);
        if (!nbuf) return -1;
        c->buf = nbuf;
        c->cap = ncap;
    }
    memcpy(c->buf + c->len, text, len);
    c->len += len;
    ck_run(c, 0, cb, user);
    return 0;
}

int chunker_flush(chunker *c, ck_cb cb, void *user)
{
    ck_run(c, 1, cb, user);
    ck_emit(c, c->len, cb, user);
    chunker_reset(c);
    return 0;
}

void chunker_reset(chunker *c)
{
    c->len = 0;
    c->scan = 0;
    c->nchars = 0;
}
