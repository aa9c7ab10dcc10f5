/*
 * The ELIZA algorithm of the 1966 paper, over a script from eliza_script.c.
 *
 * One answer:
 *   1. The input is lowercased and cut into words and clauses; '.', ',',
 *      ';', ':', '?', '!' and the word "but" end a clause, other punctuation
 *      separates words, apostrophes stay inside them. pre: substitutions
 *      rewrite each word.
 *   2. The first clause holding a keyword is the text; clauses before it are
 *      dropped, and so is everything after it. Its keywords are stacked the
 *      paper's way: one ranked higher than the top goes on top, any other at
 *      the bottom, so ties keep the order they were met in.
 *   3. If the top keyword has memory: rules, the first one that matches
 *      assembles an answer that is queued for later instead of said.
 *   4. Keywords are tried from the top: the first decomposition that
 *      matches the whole clause picks its next reassembly (each rule cycles
 *      through its own in order, per conversation). Text is the answer;
 *      =KEY continues with KEY's rules on the same clause; newkey, or no
 *      decomposition matching, moves on to the next keyword.
 *   5. Nothing answered: the oldest remembered answer, if any, else xnone.
 * Text copied from the input into an answer goes through the post:
 * substitutions (I -> you, my -> your, ...).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "eliza.h"

#define ELIZA_MAX_WORDS 100     /* words of a clause looked at; the rest is ignored */
#define ELIZA_MAX_HOPS 16       /* =KEY redirections followed for one keyword */
#define ELIZA_MATCH_BUDGET 200000 /* matcher steps per decomposition */
#define ELIZA_MEMORY_MAX 16     /* remembered answers; the oldest goes first */
#define ELIZA_LAST_RESORT "Please go on."

struct eliza_state {
    uint32_t *cycle; /* per decomposition: how many times it answered */
    char *memory[ELIZA_MEMORY_MAX];
    size_t mem_head, mem_n;
};

/* The words one decomposition element matched: w[at .. at + n). */
typedef struct span {
    size_t at, n;
} span;

/* A growing answer. `oom` sticks once an append failed. */
typedef struct sbuf {
    char *p;
    size_t n, cap;
    int oom;
} sbuf;

/* ---------------------------------------------------------------- state */

eliza_state *eliza_state_new(const eliza_script *s) {
    eliza_state *st = calloc(1, sizeof(*st));

    if (!st) return NULL;
    if (!(st->cycle = calloc(s->n_decomps ? s->n_decomps : 1, sizeof(*st->cycle)))) {
        free(st);
        return NULL;
    }
    return st;
}

void eliza_state_free(eliza_state *st) {
    if (!st) return;
    for (size_t i = 0; i < st->mem_n; i++) free(st->memory[(st->mem_head + i) % ELIZA_MEMORY_MAX]);
    free(st->cycle);
    free(st);
}

/* Queue a remembered answer (owned by st from now on); a full queue drops
 * its oldest. */
static void remember(eliza_state *st, char *answer) {
    if (st->mem_n == ELIZA_MEMORY_MAX) {
        free(st->memory[st->mem_head]);
        st->mem_head = (st->mem_head + 1) % ELIZA_MEMORY_MAX;
        st->mem_n--;
    }
    st->memory[(st->mem_head + st->mem_n) % ELIZA_MEMORY_MAX] = answer;
    st->mem_n++;
}

static char *recall(eliza_state *st) {
    char *a;

    if (st->mem_n == 0) return NULL;
    a = st->memory[st->mem_head];
    st->mem_head = (st->mem_head + 1) % ELIZA_MEMORY_MAX;
    st->mem_n--;
    return a;
}

/* ---------------------------------------------------------------- input */

/* Cut input into lowercased words; a NULL entry in the token list marks
 * the end of a clause. The words live in *buf. Returns the token count, or
 * -1 when out of memory. */
static long tokenize(const char *in, char **buf, const char ***toks) {
    size_t len = strlen(in), n = 0, o = 0, start = 0;
    char *b = malloc(2 * len + 2);
    const char **t = malloc((len + 2) * sizeof(*t));

    if (!b || !t) {
        free(b);
        free(t);
        return -1;
    }
    for (size_t i = 0; i <= len; i++) {
        unsigned char c = (unsigned char)in[i];
        int brk = 0, sep = 0;

        /* Typographic quotes and dashes, as phones' keyboards and speech
         * recognisers write them (U+2018/2019 apostrophes, U+201C/201D
         * quotes, U+2013/2014 dashes, U+2026 ellipsis). */
        if (c == 0xe2 && i + 2 < len && (unsigned char)in[i + 1] == 0x80) {
            unsigned char d = (unsigned char)in[i + 2];
            if (d == 0x98 || d == 0x99) {
                b[o++] = '\'';
                i += 2;
                continue;
            }
            if (d == 0x9c || d == 0x9d || d == 0x93 || d == 0x94 || d == 0xa6) {
                i += 2;
                brk = d == 0xa6;
                sep = 1;
            }
        }
        if (sep) {
            /* handled above */
        } else if (c == '\0' || strchr(".,;:?!", c)) {
            brk = 1;
        } else if (isalnum(c) || c == '\'' || c >= 0x80) {
            b[o++] = (char)tolower(c);
            continue;
        }
        /* End of a word: drop quoting apostrophes around it. */
        while (start < o && b[start] == '\'') start++;
        while (o > start && b[o - 1] == '\'') o--;
        if (o > start) {
            b[o++] = '\0';
            if (strcmp(b + start, "but") == 0) brk = 1;
            else t[n++] = b + start;
        }
        if (brk && n && t[n - 1]) t[n++] = NULL;
        start = o;
    }
    *buf = b;
    *toks = t;
    return (long)n;
}

/* The clause toks[0..) up to its NULL, through the pre: substitutions, at
 * most ELIZA_MAX_WORDS words. Returns the tokens consumed, end mark
 * included. */
static size_t clause_words(const eliza_script *s, const char **toks, size_t n_toks,
                           const char **w, size_t *nw) {
    size_t i;

    *nw = 0;
    for (i = 0; i < n_toks && toks[i]; i++) {
        const eliza_subst *sub = NULL;
        for (size_t k = 0; k < s->n_pre && !sub; k++)
            if (strcmp(s->pre[k].from, toks[i]) == 0) sub = &s->pre[k];
        if (!sub) {
            if (*nw < ELIZA_MAX_WORDS) w[(*nw)++] = toks[i];
            continue;
        }
        for (uint32_t k = 0; k < sub->n_to && *nw < ELIZA_MAX_WORDS; k++)
            w[(*nw)++] = s->words[sub->to + k];
    }
    return i < n_toks ? i + 1 : i;
}

/* Stack the clause's keywords: higher than the top goes on top, anything
 * else at the bottom; each keyword once. xnone is not a keyword. */
static size_t keystack(const eliza_script *s, const char **w, size_t nw, uint32_t *stack) {
    size_t n = 0;

    for (size_t i = 0; i < nw; i++) {
        long k = eliza_script_key(s, w[i]);
        size_t j;

        if (k < 0 || (uint32_t)k == s->xnone) continue;
        for (j = 0; j < n && stack[j] != (uint32_t)k; j++)
            ;
        if (j < n) continue;
        if (n && s->keys[k].rank > s->keys[stack[0]].rank) {
            memmove(stack + 1, stack, n * sizeof(*stack));
            stack[0] = (uint32_t)k;
        } else {
            stack[n] = (uint32_t)k;
        }
        n++;
    }
    return n;
}

/* ---------------------------------------------------------------- matching */

static int in_list(const eliza_script *s, uint32_t first, uint32_t n, const char *w) {
    for (uint32_t i = 0; i < n; i++)
        if (strcmp(s->words[first + i], w) == 0) return 1;
    return 0;
}

/* Does e[0..ne) match exactly w[at..nw)? Fills sp[0..ne) on success. Each
 * 0 takes as few words as it can (the leftmost reading, as in 1966).
 * *budget bounds the work a pathological pattern can cause. */
static int match(const eliza_script *s, const eliza_elem *e, size_t ne, const char **w,
                 size_t nw, size_t at, span *sp, long *budget) {
    if (ne == 0) return at == nw;
    if (--*budget < 0) return 0;
    sp->at = at;
    switch (e->kind) {
    case ELIZA_ANY:
        for (size_t n = 0; at + n <= nw && *budget >= 0; n++) {
            sp->n = n;
            if (match(s, e + 1, ne - 1, w, nw, at + n, sp + 1, budget)) return 1;
        }
        return 0;
    case ELIZA_COUNT:
        if (nw - at < e->n) return 0;
        sp->n = e->n;
        return match(s, e + 1, ne - 1, w, nw, at + e->n, sp + 1, budget);
    default:
        break;
    }
    if (at == nw) return 0;
    sp->n = 1;
    if (e->kind == ELIZA_WORD && strcmp(w[at], e->word) != 0) return 0;
    if (e->kind == ELIZA_CLASS) {
        const eliza_class *c = &s->classes[e->ref];
        if (strcmp(w[at], c->name) != 0 && !in_list(s, c->first, c->n, w[at])) return 0;
    }
    if (e->kind == ELIZA_ALT && !in_list(s, e->ref, e->n, w[at])) return 0;
    return match(s, e + 1, ne - 1, w, nw, at + 1, sp + 1, budget);
}

static int decomp_match(const eliza_script *s, const eliza_decomp *d, const char **w, size_t nw,
                        span *sp) {
    long budget = ELIZA_MATCH_BUDGET;

    return match(s, &s->elems[d->elem], d->n_elem, w, nw, 0, sp, &budget);
}

/* ---------------------------------------------------------------- answers */

static void sb_put(sbuf *b, const char *p, size_t n) {
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = (b->n + n + 1) * 2;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = 1;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->n, p, n);
    b->n += n;
    b->p[b->n] = '\0';
}

/* One word of the user's text as it appears in an answer: "i" and its
 * contractions capitalised. */
static void put_user_word(sbuf *b, const char *w) {
    if (w[0] == 'i' && (w[1] == '\0' || w[1] == '\'')) {
        sb_put(b, "I", 1);
        w++;
    }
    sb_put(b, w, strlen(w));
}

/* The words of one span, reflected through post:. */
static void put_span(const eliza_script *s, sbuf *b, const char **w, const span *sp) {
    for (size_t i = 0; i < sp->n; i++) {
        const char *word = w[sp->at + i];
        const eliza_subst *sub = NULL;

        for (size_t k = 0; k < s->n_post && !sub; k++)
            if (strcmp(s->post[k].from, word) == 0) sub = &s->post[k];
        if (i) sb_put(b, " ", 1);
        if (!sub) {
            put_user_word(b, word);
            continue;
        }
        for (uint32_t k = 0; k < sub->n_to; k++) {
            if (k) sb_put(b, " ", 1);
            put_user_word(b, s->words[sub->to + k]);
        }
    }
}

/* Tidy an assembled answer in place: single spaces, none before
 * punctuation, none at either end; a capital first letter; a final '.'
 * when the script's text ends without '.', '?' or '!'. */
static void tidy(sbuf *b) {
    size_t o = 0;
    int space = 0;

    for (size_t i = 0; i < b->n; i++) {
        char c = b->p[i];
        if (isspace((unsigned char)c)) {
            space = o > 0;
            continue;
        }
        if (space && !strchr(".,;:?!", c)) b->p[o++] = ' ';
        space = 0;
        b->p[o++] = c;
    }
    b->n = o;
    b->p[o] = '\0';
    if (o && islower((unsigned char)b->p[0])) b->p[0] = (char)toupper((unsigned char)b->p[0]);
    if (!o || !strchr(".?!", b->p[o - 1])) sb_put(b, ".", 1);
}

/* The answer of reassembly r for the clause w decomposed into sp. NULL
 * when out of memory. */
static char *assemble(const eliza_script *s, const eliza_decomp *d, const eliza_reasmb *r,
                      const char **w, const span *sp) {
    sbuf b = {0};
    const char *t = r->text;

    sb_put(&b, "", 0);
    while (*t) {
        const char *open = strchr(t, '(');
        char *close;
        unsigned long n;

        if (!open) {
            sb_put(&b, t, strlen(t));
            break;
        }
        sb_put(&b, t, (size_t)(open - t));
        t = open + 1;
        if (!isdigit((unsigned char)*t) || (n = strtoul(t, &close, 10), *close != ')') || n < 1 ||
            n > d->n_elem) {
            sb_put(&b, "(", 1); /* a literal parenthesis */
            continue;
        }
        put_span(s, &b, w, &sp[n - 1]);
        t = close + 1;
    }
    if (!b.oom) tidy(&b);
    if (b.oom) {
        free(b.p);
        return NULL;
    }
    return b.p;
}

/* Try key k (and where its =KEY rules lead) on the clause. Returns 1 with
 * *answer set, 0 when the key gives up (newkey, no match, a goto loop), -1
 * when out of memory. */
static int try_key(const eliza_script *s, eliza_state *st, uint32_t k, const char **w,
                   size_t nw, char **answer) {
    span sp[ELIZA_MAX_ELEMS];

    for (int hops = 0; hops < ELIZA_MAX_HOPS; hops++) {
        const eliza_key *key = &s->keys[k];
        const eliza_reasmb *r = NULL;
        const eliza_decomp *d = NULL;

        for (uint32_t i = 0; i < key->n_d && !r; i++) {
            uint32_t di = key->d + i;
            d = &s->decomps[di];
            if (d->memory || !decomp_match(s, d, w, nw, sp)) continue;
            r = &s->reasmbs[d->r + st->cycle[di] % d->n_r];
            st->cycle[di]++;
        }
        if (!r || r->kind == ELIZA_NEWKEY) return 0;
        if (r->kind == ELIZA_GOTO) {
            k = r->target;
            continue;
        }
        return (*answer = assemble(s, d, r, w, sp)) ? 1 : -1;
    }
    return 0;
}

/* The memory: rules of key k: the first that matches queues its answer. */
static int make_memory(const eliza_script *s, eliza_state *st, uint32_t k, const char **w,
                       size_t nw) {
    const eliza_key *key = &s->keys[k];
    span sp[ELIZA_MAX_ELEMS];

    for (uint32_t i = 0; i < key->n_d; i++) {
        uint32_t di = key->d + i;
        const eliza_decomp *d = &s->decomps[di];
        const eliza_reasmb *r;
        char *a;

        if (!d->memory || !decomp_match(s, d, w, nw, sp)) continue;
        r = &s->reasmbs[d->r + st->cycle[di] % d->n_r];
        st->cycle[di]++;
        if (!(a = assemble(s, d, r, w, sp))) return -1;
        remember(st, a);
        return 0;
    }
    return 0;
}

int eliza_respond(const eliza_script *s, eliza_state *st, const char *input, char **out) {
    const char *w[ELIZA_MAX_WORDS], **toks = NULL;
    uint32_t stack[ELIZA_MAX_WORDS];
    size_t nw = 0, ns = 0, i = 0;
    char *buf = NULL, *answer = NULL;
    long n_toks;
    int rc = 0;

    *out = NULL;
    if ((n_toks = tokenize(input ? input : "", &buf, &toks)) < 0) return -1;
    while (i < (size_t)n_toks && ns == 0) {
        i += clause_words(s, toks + i, (size_t)n_toks - i, w, &nw);
        ns = keystack(s, w, nw, stack);
    }
    /* No keyword anywhere: xnone sees the first clause. */
    if (ns == 0) clause_words(s, toks, (size_t)n_toks, w, &nw);
    if (ns && make_memory(s, st, stack[0], w, nw) < 0) goto fail;
    for (size_t k = 0; k < ns && rc == 0; k++)
        if ((rc = try_key(s, st, stack[k], w, nw, &answer)) < 0) goto fail;
    if (!answer && !(answer = recall(st))) {
        if ((rc = try_key(s, st, s->xnone, w, nw, &answer)) < 0) goto fail;
        if (rc == 0 && !(answer = strdup(ELIZA_LAST_RESORT))) goto fail;
    }
    free(buf);
    free(toks);
    *out = answer;
    return 0;
fail:
    free(buf);
    free(toks);
    return -1;
}
