/*
 * ELIZA after J. Weizenbaum, CACM 9(1), 1966: a script of ranked keywords,
 * decomposition patterns and reassembly rules, and the engine that answers
 * one user message with it.
 *
 * The script is read once (eliza_script.c) and is immutable afterwards, so
 * any number of threads may answer with it. Everything that changes from
 * one answer to the next (which reassembly of each rule comes next, the
 * remembered "my" sentences) lives in an eliza_state, one per conversation;
 * eliza_sessions.c keeps those states per session id in a bounded LRU map.
 * A state is not locked: its owner serialises the calls on it.
 */
#ifndef VX_ELIZA_H
#define VX_ELIZA_H

#include <stddef.h>
#include <stdint.h>

/* The built-in DOCTOR script: doctor.txt, compiled in. */
extern const char eliza_doctor_txt[];

/* ---------------------------------------------------------------- script */

/* Longest pattern, in elements: bounds the matcher's recursion. */
#define ELIZA_MAX_ELEMS 64

/* Pattern elements (see the format in doctor.txt). */
enum {
    ELIZA_ANY,   /* 0 or *: any number of words */
    ELIZA_COUNT, /* N: exactly n words */
    ELIZA_WORD,  /* that very word */
    ELIZA_CLASS, /* @name: one word of class `ref` */
    ELIZA_ALT    /* [a b c]: one of words[ref .. ref + n) */
};

/* Reassembly kinds. */
enum { ELIZA_TEXT, ELIZA_GOTO, ELIZA_NEWKEY };

typedef struct eliza_elem {
    int kind;
    const char *word; /* ELIZA_WORD */
    uint32_t n;       /* ELIZA_COUNT: words; ELIZA_ALT: alternatives */
    uint32_t ref;     /* ELIZA_CLASS: class index; ELIZA_ALT: first word */
} eliza_elem;

typedef struct eliza_reasmb {
    int kind;
    const char *text; /* ELIZA_TEXT: the answer with (N) references */
    uint32_t target;  /* ELIZA_GOTO: key index */
    uint32_t line;
} eliza_reasmb;

/* A decomposition rule; its index in the script is its cycle counter's
 * index in every state. */
typedef struct eliza_decomp {
    uint32_t elem, n_elem; /* pattern: elems[elem .. elem + n_elem) */
    uint32_t r, n_r;       /* reassemblies: reasmbs[r .. r + n_r) */
    int memory;            /* a memory: rule: store the answer, do not say it */
    uint32_t line;
} eliza_decomp;

typedef struct eliza_key {
    const char *word;
    long rank;
    uint32_t d, n_d; /* decomps[d .. d + n_d), memory rules included */
    uint32_t line;
} eliza_key;

/* pre: and post: substitutions: from -> words[to .. to + n_to). */
typedef struct eliza_subst {
    const char *from;
    uint32_t to, n_to;
} eliza_subst;

/* A synon: class: name and words[first .. first + n). */
typedef struct eliza_class {
    const char *name;
    uint32_t first, n;
    uint32_t line;
} eliza_class;

typedef struct eliza_script {
    char *buf; /* the script text, cut in place; every string points here */
    eliza_key *keys;
    eliza_decomp *decomps;
    eliza_reasmb *reasmbs;
    eliza_elem *elems;
    const char **words;
    eliza_subst *pre, *post;
    eliza_class *classes;
    size_t n_keys, n_decomps, n_reasmbs, n_elems, n_words, n_pre, n_post, n_classes;
    uint32_t xnone; /* index of the "xnone" key */
} eliza_script;

/* Read a script from text[0..len). `name` labels error messages. On success
 * returns 0 and sets *out (free with eliza_script_free). Returns -1 with
 * "name:line: what is wrong" in err when the script is malformed, -2 with
 * err set when out of memory. */
int eliza_script_parse(const char *text, size_t len, const char *name, eliza_script **out,
                       char *err, size_t errlen);

/* eliza_script_parse on the contents of a file. Returns -1 also when the
 * file cannot be read or is larger than 4 MiB (err says which). */
int eliza_script_load(const char *path, eliza_script **out, char *err, size_t errlen);

void eliza_script_free(eliza_script *s);

/* Index of the key spelled `word`, or -1. */
long eliza_script_key(const eliza_script *s, const char *word);

/* ---------------------------------------------------------------- engine */

typedef struct eliza_state eliza_state;

/* A fresh conversation: every rule at its first reassembly, nothing
 * remembered. NULL when out of memory. */
eliza_state *eliza_state_new(const eliza_script *s);
void eliza_state_free(eliza_state *st);

/* Answer `input` the way ELIZA does and advance st. On success returns 0
 * and *out holds the answer (malloc'd, caller frees): one line, single
 * spaces, first letter capitalised, ending in punctuation. Returns -1 when
 * out of memory; st may then have moved on as if an answer was given. */
int eliza_respond(const eliza_script *s, eliza_state *st, const char *input, char **out);

/* ---------------------------------------------------------------- sessions */

typedef struct eliza_sessions eliza_sessions;

/* A map of at most max conversations (max >= 1); the least recently used
 * one is forgotten when a new one needs room. NULL when out of memory. */
eliza_sessions *eliza_sessions_new(const eliza_script *s, size_t max);

/* The state of conversation `id` (any string, "" included), created when
 * new; it becomes the most recently used. The pointer stays valid until
 * the next eliza_sessions_get or eliza_sessions_free. NULL when out of
 * memory. */
eliza_state *eliza_sessions_get(eliza_sessions *m, const char *id);

size_t eliza_sessions_count(const eliza_sessions *m);
void eliza_sessions_free(eliza_sessions *m);

#endif
