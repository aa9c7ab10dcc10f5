/*
 * Reading an ELIZA script (the line format documented in doctor.txt).
 *
 * The text is copied once and cut in place: every word, pattern element
 * and reassembly of the script points into that copy, so the script is a
 * handful of arrays and one buffer. Elements, reassemblies and decomps are
 * appended in file order, which keeps each key's decomps and each decomp's
 * elements and reassemblies contiguous. Names that may be defined further
 * down (@classes, =goto targets) are resolved when the whole file is read.
 * Every error names the line and says what is wrong with it.
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>

#include "eliza.h"

#define ELIZA_MAX_SCRIPT (4u << 20)
#define ELIZA_MAX_RANK 1000000L
#define ELIZA_MAX_COUNT 1000u

typedef struct parser {
    eliza_script *s;
    size_t cap_keys, cap_decomps, cap_reasmbs, cap_elems, cap_words, cap_pre, cap_post,
        cap_classes;
    const char *name;
    uint32_t line;
    long key;    /* the key being read, or -1 */
    long decomp; /* its decomp being read, or -1 */
    char *err;
    size_t errlen;
    int oom;
} parser;

#if defined(__GNUC__)
#define ELIZA_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define ELIZA_PRINTF(f, a)
#endif

/* Record "name:line: what" (line 0: the whole script) and return -1. */
static int perr(parser *p, uint32_t line, const char *fmt, ...) ELIZA_PRINTF(3, 4);

static int perr(parser *p, uint32_t line, const char *fmt, ...) {
    char what[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(what, sizeof(what), fmt, ap);
    va_end(ap);
    if (line) snprintf(p->err, p->errlen, "%s:%u: %s", p->name, (unsigned)line, what);
    else snprintf(p->err, p->errlen, "%s: %s", p->name, what);
    return -1;
}

static int poom(parser *p) {
    p->oom = 1;
    snprintf(p->err, p->errlen, "%s: out of memory reading the script", p->name);
    return -1;
}

/* Make room for one more element of *arr. -1 when out of memory. */
static int grow(parser *p, void *arr, size_t n, size_t *cap, size_t size) {
    void **a = arr;
    size_t c = *cap ? *cap * 2 : 16;
    void *na;

    if (n < *cap) return 0;
    if (!(na = realloc(*a, c * size))) return poom(p);
    *a = na;
    *cap = c;
    return 0;
}

/* The next blank-separated word of *cur, cut out and lowercased; NULL at
 * the end of the line. */
static char *next_word(char **cur) {
    char *w = *cur, *e;

    while (*w && isspace((unsigned char)*w)) w++;
    if (!*w) return *cur = w, NULL;
    for (e = w; *e && !isspace((unsigned char)*e); e++) *e = (char)tolower((unsigned char)*e);
    if (*e) *e++ = '\0';
    *cur = e;
    return w;
}

static int add_word(parser *p, const char *w) {
    eliza_script *s = p->s;

    if (grow(p, &s->words, s->n_words, &p->cap_words, sizeof(*s->words))) return -1;
    s->words[s->n_words++] = w;
    return 0;
}

static int is_number(const char *w) {
    if (!*w) return 0;
    for (; *w; w++)
        if (!isdigit((unsigned char)*w)) return 0;
    return 1;
}

long eliza_script_key(const eliza_script *s, const char *word) {
    for (size_t i = 0; i < s->n_keys; i++)
        if (strcmp(s->keys[i].word, word) == 0) return (long)i;
    return -1;
}

/* ---------------------------------------------------------------- directives */

/* pre: and post: FROM REPLACEMENT... */
static int parse_subst(parser *p, char *args, int post) {
    eliza_script *s = p->s;
    eliza_subst **list = post ? &s->post : &s->pre;
    size_t *n = post ? &s->n_post : &s->n_pre;
    size_t *cap = post ? &p->cap_post : &p->cap_pre;
    const char *what = post ? "post" : "pre";
    char *from = next_word(&args), *w;
    eliza_subst sub;

    if (!from) return perr(p, p->line, "%s: needs a word and its replacement", what);
    for (size_t i = 0; i < *n; i++)
        if (strcmp((*list)[i].from, from) == 0)
            return perr(p, p->line, "%s: '%s' is replaced twice", what, from);
    sub.from = from;
    sub.to = (uint32_t)s->n_words;
    sub.n_to = 0;
    while ((w = next_word(&args)) != NULL) {
        if (add_word(p, w)) return -1;
        sub.n_to++;
    }
    if (sub.n_to == 0) return perr(p, p->line, "%s: '%s' has no replacement", what, from);
    if (grow(p, list, *n, cap, sizeof(**list))) return -1;
    (*list)[(*n)++] = sub;
    return 0;
}

/* synon: NAME WORD... */
static int parse_synon(parser *p, char *args) {
    eliza_script *s = p->s;
    char *name = next_word(&args), *w;
    eliza_class c;

    if (!name) return perr(p, p->line, "synon: needs a class name and its words");
    for (size_t i = 0; i < s->n_classes; i++)
        if (strcmp(s->classes[i].name, name) == 0)
            return perr(p, p->line, "synon: class '%s' is already defined at line %u", name,
                        (unsigned)s->classes[i].line);
    c.name = name;
    c.first = (uint32_t)s->n_words;
    c.n = 0;
    c.line = p->line;
    while ((w = next_word(&args)) != NULL) {
        if (add_word(p, w)) return -1;
        c.n++;
    }
    if (c.n == 0) return perr(p, p->line, "synon: class '%s' has no words", name);
    if (grow(p, &s->classes, s->n_classes, &p->cap_classes, sizeof(*s->classes))) return -1;
    s->classes[s->n_classes++] = c;
    return 0;
}

/* The decomp being read must have a reassembly before anything else
 * starts. */
static int end_decomp(parser *p) {
    eliza_decomp *d;

    if (p->decomp < 0) return 0;
    d = &p->s->decomps[p->decomp];
    p->decomp = -1;
    if (d->n_r == 0)
        return perr(p, d->line, "%s: has no reasmb: line under it",
                    d->memory ? "memory" : "decomp");
    return 0;
}

static int end_key(parser *p) {
    eliza_key *k;
    uint32_t answering = 0;

    if (end_decomp(p)) return -1;
    if (p->key < 0) return 0;
    k = &p->s->keys[p->key];
    p->key = -1;
    for (uint32_t i = 0; i < k->n_d; i++) answering += !p->s->decomps[k->d + i].memory;
    if (answering == 0) return perr(p, k->line, "key: '%s' has no decomp: rule", k->word);
    return 0;
}

/* key: WORD [RANK] */
static int parse_key(parser *p, char *args) {
    eliza_script *s = p->s;
    char *word = next_word(&args), *rank = next_word(&args), *end;
    eliza_key k = {0};
    long i;

    if (end_key(p)) return -1;
    if (!word) return perr(p, p->line, "key: needs a word");
    if ((i = eliza_script_key(s, word)) >= 0)
        return perr(p, p->line, "key: '%s' is already defined at line %u", word,
                    (unsigned)s->keys[i].line);
    if (rank) {
        errno = 0;
        k.rank = strtol(rank, &end, 10);
        if (!is_number(rank) || errno || k.rank > ELIZA_MAX_RANK)
            return perr(p, p->line, "key: rank '%s' is not a whole number from 0 to %ld", rank,
                        ELIZA_MAX_RANK);
        if (next_word(&args)) return perr(p, p->line, "key: expected a word and a rank, got more");
    }
    k.word = word;
    k.d = (uint32_t)s->n_decomps;
    k.line = p->line;
    if (grow(p, &s->keys, s->n_keys, &p->cap_keys, sizeof(*s->keys))) return -1;
    p->key = (long)s->n_keys;
    s->keys[s->n_keys++] = k;
    return 0;
}

/* One element of a pattern from its word(s); [..] consumes up to its ']'. */
static int parse_elem(parser *p, char *w, char **args, eliza_elem *e) {
    eliza_script *s = p->s;

    memset(e, 0, sizeof(*e));
    if (strcmp(w, "0") == 0 || strcmp(w, "*") == 0) {
        e->kind = ELIZA_ANY;
    } else if (is_number(w)) {
        unsigned long n = strtoul(w, NULL, 10);
        if (n > ELIZA_MAX_COUNT)
            return perr(p, p->line, "pattern: '%s' words is more than %u", w, ELIZA_MAX_COUNT);
        e->kind = ELIZA_COUNT;
        e->n = (uint32_t)n;
    } else if (w[0] == '@') {
        if (!w[1]) return perr(p, p->line, "pattern: '@' without a class name");
        e->kind = ELIZA_CLASS;
        e->word = w + 1; /* resolved to ref once every synon: is known */
    } else if (w[0] == '[') {
        int closed = 0;

        e->kind = ELIZA_ALT;
        e->ref = (uint32_t)s->n_words;
        w++;
        for (;;) {
            size_t l = strlen(w);
            if (l && w[l - 1] == ']') w[--l] = '\0', closed = 1;
            if (strchr(w, '[') || strchr(w, ']'))
                return perr(p, p->line, "pattern: brackets do not nest");
            if (l) {
                if (add_word(p, w)) return -1;
                e->n++;
            }
            if (closed) break;
            if (!(w = next_word(args))) return perr(p, p->line, "pattern: '[' without ']'");
        }
        if (e->n == 0) return perr(p, p->line, "pattern: '[]' offers no word");
    } else {
        if (strchr(w, ']')) return perr(p, p->line, "pattern: ']' without '['");
        e->kind = ELIZA_WORD;
        e->word = w;
    }
    return 0;
}

/* decomp: PATTERN and memory: PATTERN */
static int parse_decomp(parser *p, char *args, int memory) {
    eliza_script *s = p->s;
    const char *what = memory ? "memory" : "decomp";
    eliza_decomp d = {0};
    char *w;

    if (end_decomp(p)) return -1;
    if (p->key < 0) return perr(p, p->line, "%s: comes before any key:", what);
    d.elem = (uint32_t)s->n_elems;
    d.r = (uint32_t)s->n_reasmbs;
    d.memory = memory;
    d.line = p->line;
    while ((w = next_word(&args)) != NULL) {
        eliza_elem e;
        if (parse_elem(p, w, &args, &e)) return -1;
        if (d.n_elem == ELIZA_MAX_ELEMS)
            return perr(p, p->line, "%s: a pattern has at most %d elements", what,
                        ELIZA_MAX_ELEMS);
        if (grow(p, &s->elems, s->n_elems, &p->cap_elems, sizeof(*s->elems))) return -1;
        s->elems[s->n_elems++] = e;
        d.n_elem++;
    }
    if (d.n_elem == 0) return perr(p, p->line, "%s: needs a pattern (0 matches anything)", what);
    if (grow(p, &s->decomps, s->n_decomps, &p->cap_decomps, sizeof(*s->decomps))) return -1;
    p->decomp = (long)s->n_decomps;
    s->decomps[s->n_decomps++] = d;
    s->keys[p->key].n_d++;
    return 0;
}

/* reasmb: TEXT | =KEY | goto KEY | newkey */
static int parse_reasmb(parser *p, char *args) {
    eliza_script *s = p->s;
    eliza_decomp *d;
    eliza_reasmb r = {0};
    char *end = args + strlen(args);

    if (p->decomp < 0) return perr(p, p->line, "reasmb: comes before any decomp: or memory:");
    d = &s->decomps[p->decomp];
    while (end > args && isspace((unsigned char)end[-1])) *--end = '\0';
    if (!*args) return perr(p, p->line, "reasmb: needs the text of an answer");
    r.line = p->line;
    r.text = args;
    if (strcasecmp(args, "newkey") == 0) {
        r.kind = ELIZA_NEWKEY;
    } else if (args[0] == '=' || (strncasecmp(args, "goto", 4) == 0 && isspace((unsigned char)args[4]))) {
        char *cur = args[0] == '=' ? args + 1 : args + 4;
        char *target = next_word(&cur);
        if (!target || next_word(&cur))
            return perr(p, p->line, "reasmb: '%s' must name exactly one key", args);
        r.kind = ELIZA_GOTO;
        r.text = target; /* resolved to target once every key is known */
    } else {
        r.kind = ELIZA_TEXT;
        for (const char *c = args; (c = strchr(c, '(')) != NULL; c++) {
            char *close;
            unsigned long n;
            if (!isdigit((unsigned char)c[1])) continue;
            n = strtoul(c + 1, &close, 10);
            if (*close != ')') continue;
            if (n < 1 || n > d->n_elem)
                return perr(p, p->line,
                            "reasmb: (%lu) refers to no part of the pattern, which has %u "
                            "element%s",
                            n, (unsigned)d->n_elem, d->n_elem == 1 ? "" : "s");
        }
    }
    if (d->memory && r.kind != ELIZA_TEXT)
        return perr(p, p->line, "reasmb: a memory: rule can only remember text, not '%s'", args);
    if (grow(p, &s->reasmbs, s->n_reasmbs, &p->cap_reasmbs, sizeof(*s->reasmbs))) return -1;
    s->reasmbs[s->n_reasmbs++] = r;
    d->n_r++;
    return 0;
}

static int parse_line(parser *p, char *line) {
    char *colon, *dir = line, *args;

    while (isspace((unsigned char)*dir)) dir++;
    if (!*dir || *dir == '#') return 0;
    if (!(colon = strchr(dir, ':')))
        return perr(p, p->line, "expected 'directive: arguments', got '%.40s'", dir);
    *colon = '\0';
    args = colon + 1;
    for (char *e = colon; e > dir && isspace((unsigned char)e[-1]);) *--e = '\0';
    while (isspace((unsigned char)*args)) args++;
    if (strcasecmp(dir, "pre") == 0) return parse_subst(p, args, 0);
    if (strcasecmp(dir, "post") == 0) return parse_subst(p, args, 1);
    if (strcasecmp(dir, "synon") == 0) return parse_synon(p, args);
    if (strcasecmp(dir, "key") == 0) return parse_key(p, args);
    if (strcasecmp(dir, "decomp") == 0) return parse_decomp(p, args, 0);
    if (strcasecmp(dir, "memory") == 0) return parse_decomp(p, args, 1);
    if (strcasecmp(dir, "reasmb") == 0) return parse_reasmb(p, args);
    return perr(p, p->line,
                "unknown directive '%.40s' (expected pre, post, synon, key, decomp, memory "
                "or reasmb)",
                dir);
}

/* ---------------------------------------------------------------- whole file */

/* Names that may be defined after their use: classes and goto targets;
 * then what the engine relies on: an xnone key that always answers. */
static int resolve(parser *p) {
    eliza_script *s = p->s;
    long x;

    for (size_t di = 0; di < s->n_decomps; di++) {
        eliza_decomp *d = &s->decomps[di];
        for (uint32_t i = 0; i < d->n_elem; i++) {
            eliza_elem *e = &s->elems[d->elem + i];
            size_t c;
            if (e->kind != ELIZA_CLASS) continue;
            for (c = 0; c < s->n_classes && strcmp(s->classes[c].name, e->word) != 0; c++)
                ;
            if (c == s->n_classes)
                return perr(p, d->line, "pattern: '@%s' names no synon: class", e->word);
            e->ref = (uint32_t)c;
        }
    }
    for (size_t ri = 0; ri < s->n_reasmbs; ri++) {
        eliza_reasmb *r = &s->reasmbs[ri];
        long k;
        if (r->kind != ELIZA_GOTO) continue;
        if ((k = eliza_script_key(s, r->text)) < 0)
            return perr(p, r->line, "reasmb: '=%s' names no key", r->text);
        r->target = (uint32_t)k;
    }
    if ((x = eliza_script_key(s, "xnone")) < 0)
        return perr(p, 0, "no 'key: xnone' to answer when no keyword applies");
    s->xnone = (uint32_t)x;
    for (uint32_t i = 0; i < s->keys[x].n_d; i++) {
        const eliza_decomp *d = &s->decomps[s->keys[x].d + i];
        for (uint32_t j = 0; j < d->n_r; j++)
            if (s->reasmbs[d->r + j].kind == ELIZA_NEWKEY)
                return perr(p, s->reasmbs[d->r + j].line,
                            "reasmb: newkey under xnone leaves nothing to answer");
    }
    return 0;
}

void eliza_script_free(eliza_script *s) {
    if (!s) return;
    free(s->buf);
    free(s->keys);
    free(s->decomps);
    free(s->reasmbs);
    free(s->elems);
    free(s->words);
    free(s->pre);
    free(s->post);
    free(s->classes);
    free(s);
}

int eliza_script_parse(const char *text, size_t len, const char *name, eliza_script **out,
                       char *err, size_t errlen) {
    parser p = {0};
    char *line, *end;

    *out = NULL;
    p.name = name;
    p.err = err;
    p.errlen = errlen;
    p.key = p.decomp = -1;
    if (!(p.s = calloc(1, sizeof(*p.s))) || !(p.s->buf = malloc(len + 1))) {
        poom(&p);
        goto fail;
    }
    memcpy(p.s->buf, text, len);
    p.s->buf[len] = '\0';
    for (line = p.s->buf, end = p.s->buf + len; line < end;) {
        char *nl = memchr(line, '\n', (size_t)(end - line));
        char *next = nl ? nl + 1 : end;
        size_t l = (size_t)((nl ? nl : end) - line);
        line[l] = '\0';
        if (l && line[l - 1] == '\r') line[l - 1] = '\0';
        p.line++;
        if (parse_line(&p, line)) goto fail;
        line = next;
    }
    if (end_key(&p) || resolve(&p)) goto fail;
    *out = p.s;
    return 0;
fail:
    eliza_script_free(p.s);
    return p.oom ? -2 : -1;
}

int eliza_script_load(const char *path, eliza_script **out, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    char *text = NULL;
    size_t n = 0;
    struct stat st;
    int rc = -1;

    *out = NULL;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        snprintf(err, errlen, "%s: not a regular file", path);
        goto done;
    }
    if (st.st_size > (off_t)ELIZA_MAX_SCRIPT) {
        snprintf(err, errlen, "%s: larger than %u bytes", path, ELIZA_MAX_SCRIPT);
        goto done;
    }
    if (!(text = malloc((size_t)st.st_size + 1))) {
        snprintf(err, errlen, "%s: out of memory reading the script", path);
        rc = -2;
        goto done;
    }
    n = fread(text, 1, (size_t)st.st_size, f);
    if (ferror(f)) {
        snprintf(err, errlen, "%s: read error: %s", path, strerror(errno));
        goto done;
    }
    rc = eliza_script_parse(text, n, path, out, err, errlen);
done:
    free(text);
    fclose(f);
    return rc;
}
