/*
 * Sentence chunker (host/pipeline/chunker.c): where LLM text is cut into pieces for
 * TTS, and that the cuts do not depend on how the text arrived.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pipeline/chunker.h"

/* ------------------------------------------------------------ helpers */

#define MAX_PIECES 256

typedef struct pieces {
    int n;
    char *p[MAX_PIECES];
} pieces;

static void on_piece(void *user, const char *piece)
{
    pieces *ps = user;
    assert_true(ps->n < MAX_PIECES);
    ps->p[ps->n] = strdup(piece);
    assert_non_null(ps->p[ps->n]);
    ps->n++;
}

static void pieces_free(pieces *ps)
{
    int i;
    for (i = 0; i < ps->n; i++) free(ps->p[i]);
    ps->n = 0;
}

static uint32_t rng_state = 1234567u;

static uint32_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 17;
    rng_state ^= rng_state << 5;
    return rng_state;
}

/* Chunk `text` arriving in pieces of `step` bytes (0 = all at once, -1 =
 * random 1..8), then flush. */
static pieces chunk(size_t min, size_t max, const char *text, int step)
{
    pieces ps;
    chunker *c = chunker_new(min, max);
    size_t len = strlen(text), i = 0;

    memset(&ps, 0, sizeof ps);
    assert_non_null(c);
    while (i < len) {
        size_t k = step == 0 ? len : step < 0 ? 1 + rng() % 8 : (size_t)step;
        if (k > len - i) k = len - i;
        assert_int_equal(chunker_push(c, text + i, k, on_piece, &ps), 0);
        i += k;
    }
    assert_int_equal(chunker_flush(c, on_piece, &ps), 0);
    chunker_free(c);
    return ps;
}

static void dump(const pieces *ps)
{
    int i;
    for (i = 0; i < ps->n; i++) fprintf(stderr, "#   [%s]\n", ps->p[i]);
}

/* The pieces of `text` (fed at once, then byte by byte) are the
 * NULL-terminated list that follows. */
static void expect(size_t min, size_t max, const char *text, ...)
{
    int step, i;
    for (step = 0; step <= 1; step++) {
        pieces ps = chunk(min, max, text, step);
        va_list ap;
        const char *want;

        va_start(ap, text);
        for (i = 0; (want = va_arg(ap, const char *)) != NULL; i++) {
            if (i >= ps.n || strcmp(ps.p[i], want) != 0) {
                fprintf(stderr, "# text [%s] step %d: piece %d should be [%s]; got:\n", text,
                        step, i, want);
                dump(&ps);
            }
            assert_true(i < ps.n);
            assert_string_equal(ps.p[i], want);
        }
        va_end(ap);
        if (ps.n != i) {
            fprintf(stderr, "# text [%s]: %d pieces, expected %d:\n", text, ps.n, i);
            dump(&ps);
        }
        assert_int_equal(ps.n, i);
        pieces_free(&ps);
    }
}

static int utf8_valid(const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    while (*p) {
        int n = *p < 0x80 ? 1 : (*p & 0xE0) == 0xC0 ? 2 : (*p & 0xF0) == 0xE0 ? 3
              : (*p & 0xF8) == 0xF0 ? 4 : 0;
        int i;
        if (!n) return 0;
        for (i = 1; i < n; i++)
            if ((p[i] & 0xC0) != 0x80) return 0;
        p += n;
    }
    return 1;
}

static size_t utf8_chars(const char *s)
{
    size_t k = 0;
    for (; *s; s++)
        if (((unsigned char)*s & 0xC0) != 0x80) k++;
    return k;
}

static int is_ws(char ch)
{
    return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v';
}

/* s without whitespace, into buf. */
static void squeeze(const char *s, char *buf)
{
    for (; *s; s++)
        if (!is_ws(*s)) *buf++ = *s;
    *buf = '\0';
}

/* ------------------------------------------------------------ tests */

static void two_sentences_make_two_pieces(void **state)
{
    (void)state;
    expect(0, 0, "Hello there, my friend. How are you doing today?",
           "Hello there, my friend.", "How are you doing today?", NULL);
}

/* "." alone decides nothing: the piece ends once the space arrives. */
static void boundary_split_across_tokens_waits_for_the_next_character(void **state)
{
    pieces ps;
    chunker *c = chunker_new(0, 0);
    (void)state;

    memset(&ps, 0, sizeof ps);
    assert_int_equal(chunker_push(c, "Hello world", 11, on_piece, &ps), 0);
    assert_int_equal(chunker_push(c, ".", 1, on_piece, &ps), 0);
    assert_int_equal(ps.n, 0);
    assert_int_equal(chunker_push(c, " World", 6, on_piece, &ps), 0);
    assert_int_equal(ps.n, 1);
    assert_string_equal(ps.p[0], "Hello world.");
    assert_int_equal(chunker_push(c, " again", 6, on_piece, &ps), 0);
    assert_int_equal(chunker_flush(c, on_piece, &ps), 0);
    assert_int_equal(ps.n, 2);
    assert_string_equal(ps.p[1], "World again");
    pieces_free(&ps);
    chunker_free(c);
}

/* Property: for many texts built from tricky fragments, feeding one byte
 * at a time or in random slices gives exactly the pieces of feeding it all
 * at once; and every piece is trimmed, valid UTF-8, and together they hold
 * all the text. */
static void byte_at_a_time_equals_all_at_once(void **state)
{
    static const char *const frag[] = {
        "Hello", "world", "3.14", "1,000.50", "Dr.", "e.g.", "U.S.", "No.", "5", "J.",
        "...", "…", "?!", "!", "?", ".", ",", ";", ":", "\n", "\n\n", " ", "  ", "\t",
        "Ça", "Très", "bien", "😀", "日本語", "\"", "”", "'", ")", "(", "«", "»", "etc.",
        "p.m.", "I", "a", "the", "verylongwordwithoutanyspaces",
    };
    static const size_t limits[][2] = {{0, 0}, {1, 0}, {1, 20}, {5, 30}, {12, 40}, {3, 7}};
    char text[1200], a[1300], b[1300];
    int t, l, s;
    (void)state;

    for (t = 0; t < 300; t++) {
        size_t len = 0;
        int words = 1 + (int)(rng() % 120);
        text[0] = '\0';
        while (words-- > 0) {
            const char *f = frag[rng() % (sizeof frag / sizeof *frag)];
            if (len + strlen(f) + 2 >= sizeof text) break;
            strcpy(text + len, f);
            len += strlen(f);
            if (rng() % 2) text[len++] = ' ';
            text[len] = '\0';
        }
        for (l = 0; l < (int)(sizeof limits / sizeof *limits); l++) {
            pieces whole = chunk(limits[l][0], limits[l][1], text, 0);
            int i;

            for (s = 1; s <= 2; s++) {
                pieces split = chunk(limits[l][0], limits[l][1], text, s == 1 ? 1 : -1);
                if (split.n != whole.n) {
                    fprintf(stderr, "# [%s] limits %d: %d vs %d pieces\n", text, l, split.n, whole.n);
                    dump(&whole);
                    dump(&split);
                }
                assert_int_equal(split.n, whole.n);
                for (i = 0; i < whole.n; i++) assert_string_equal(split.p[i], whole.p[i]);
                pieces_free(&split);
            }

            b[0] = '\0';
            for (i = 0; i < whole.n; i++) {
                const char *p = whole.p[i];
                assert_true(p[0] != '\0');
                assert_false(is_ws(p[0]));
                assert_false(is_ws(p[strlen(p) - 1]));
                assert_true(utf8_valid(p));
                squeeze(p, b + strlen(b));
            }
            squeeze(text, a);
            assert_string_equal(a, b);
            pieces_free(&whole);
        }
    }
}

static void numbers_do_not_split(void **state)
{
    (void)state;
    expect(1, 0, "Pi is about 3.14 and it costs 1,000.50 dollars. Next one.",
           "Pi is about 3.14 and it costs 1,000.50 dollars.", "Next one.", NULL);
    expect(1, 0, "Version 2.0.1 is out.", "Version 2.0.1 is out.", NULL);
}

static void abbreviations_do_not_split(void **state)
{
    (void)state;
    expect(1, 0, "Mr. Smith and Mrs. Smith met Ms. Lee and Dr. Jones.",
           "Mr. Smith and Mrs. Smith met Ms. Lee and Dr. Jones.", NULL);
    expect(1, 0, "Prof. Xavier, Sr. and Jr. live on St. James vs. the rest.",
           "Prof. Xavier, Sr. and Jr. live on St. James vs. the rest.", NULL);
    expect(1, 0, "Fruit, e.g. apples, i.e. food, etc. is sold in the U.S. today.",
           "Fruit, e.g. apples, i.e. food, etc. is sold in the U.S. today.", NULL);
    expect(1, 0, "Meet at 9 a.m. or 5 p.m. sharp.", "Meet at 9 a.m. or 5 p.m. sharp.", NULL);
    expect(1, 0, "DR. NO and (mr. X) came.", "DR. NO and (mr. X) came.", NULL);
}

static void single_capital_initials_do_not_split(void **state)
{
    (void)state;
    expect(1, 0, "J. R. R. Tolkien wrote it. Then J. Smith read it.",
           "J. R. R. Tolkien wrote it.", "Then J. Smith read it.", NULL);
}

/* "No." is an abbreviation only before a number. */
static void no_before_a_digit_does_not_split(void **state)
{
    (void)state;
    expect(1, 0, "Track No. 5 is next.", "Track No. 5 is next.", NULL);
    expect(1, 0, "No. I will not.", "No.", "I will not.", NULL);
}

static void question_and_exclamation_marks_split(void **state)
{
    (void)state;
    expect(1, 0, "Really? Yes! Great.", "Really?", "Yes!", "Great.", NULL);
    expect(1, 0, "What?! No way!!", "What?!", "No way!!", NULL);
}

static void closing_quotes_stay_with_their_sentence(void **state)
{
    (void)state;
    expect(1, 0, "He said \"stop.\" Then he left.", "He said \"stop.\"", "Then he left.", NULL);
    expect(1, 0, "(Like this!) And “that.” Done.", "(Like this!)", "And “that.”", "Done.", NULL);
}

static void a_period_not_followed_by_whitespace_does_not_split(void **state)
{
    (void)state;
    expect(1, 0, "See example.com/a.b for more.", "See example.com/a.b for more.", NULL);
}

static void ellipsis_never_ends_a_piece(void **state)
{
    (void)state;
    expect(1, 0, "Well... I think so. Hmm… maybe. Wait.. what.",
           "Well... I think so.", "Hmm… maybe.", "Wait.. what.", NULL);
}

static void newline_ends_a_piece(void **state)
{
    (void)state;
    expect(0, 0, "A heading without a stop\nThen the body text\n\nand more of it",
           "A heading without a stop", "Then the body text", "and more of it", NULL);
}

static void pieces_shorter_than_min_chars_merge_with_the_next(void **state)
{
    (void)state;
    expect(12, 0, "Hi. Yes. Sure thing. Bye.", "Hi. Yes. Sure thing.", "Bye.", NULL);
    expect(12, 0, "Hi.\nOkay, let us go then.", "Hi.\nOkay, let us go then.", NULL);
}

static void long_text_without_stop_is_cut_at_the_last_space(void **state)
{
    (void)state;
    expect(1, 30, "one two three four five six seven eight nine ten eleven twelve",
           "one two three four five six", "seven eight nine ten eleven", "twelve", NULL);
}

/* A window that ends exactly on a word end is cut there. */
static void long_text_is_cut_at_max_chars_when_a_word_ends_there(void **state)
{
    (void)state;
    expect(1, 9, "abcd efgh ijkl mnop", "abcd efgh", "ijkl mnop", NULL);
}

/* A clause mark in the second half of the window is preferred to a later
 * space. */
static void long_text_is_cut_after_a_clause_mark(void **state)
{
    (void)state;
    expect(1, 40, "alpha beta gamma delta, epsilon zeta eta theta iota kappa",
           "alpha beta gamma delta,", "epsilon zeta eta theta iota kappa", NULL);
    /* "1,000" is not a clause mark. */
    expect(1, 20, "about 1,000 apples and pears", "about 1,000 apples", "and pears", NULL);
}

static void long_word_is_cut_at_max_chars(void **state)
{
    (void)state;
    expect(1, 10, "abcdefghijklmnopqrstuvwxyz", "abcdefghij", "klmnopqrst", "uvwxyz", NULL);
}

static void utf8_is_never_split_inside_a_character(void **state)
{
    const char *emoji = "😀😁😂🤣😃😄😅😆😉😊😋😎";
    pieces ps;
    int i, step;
    (void)state;

    expect(1, 0, "Ça va? Très bien. Ünïcödé… ok!", "Ça va?", "Très bien.", "Ünïcödé… ok!", NULL);

    /* A run of 4-byte characters cut by max_chars, whichever way it arrives. */
    for (step = 0; step <= 1; step++) {
        ps = chunk(1, 5, emoji, step);
        assert_int_equal(ps.n, 3);
        for (i = 0; i < ps.n; i++) {
            assert_true(utf8_valid(ps.p[i]));
            assert_int_equal(utf8_chars(ps.p[i]), i < 2 ? 5 : 2);
        }
        assert_string_equal(ps.p[0], "😀😁😂🤣😃");
        pieces_free(&ps);
    }
}

static void flush_emits_the_tail(void **state)
{
    pieces ps;
    chunker *c = chunker_new(0, 0);
    (void)state;

    memset(&ps, 0, sizeof ps);
    assert_int_equal(chunker_push(c, "The answer is No.", 17, on_piece, &ps), 0);
    assert_int_equal(ps.n, 0);
    assert_int_equal(chunker_flush(c, on_piece, &ps), 0);
    assert_int_equal(ps.n, 1);
    assert_string_equal(ps.p[0], "The answer is No.");

    /* Flushed means empty: a second flush has nothing to say. */
    assert_int_equal(chunker_flush(c, on_piece, &ps), 0);
    assert_int_equal(ps.n, 1);
    pieces_free(&ps);
    chunker_free(c);
}

static void reset_drops_buffered_text(void **state)
{
    pieces ps;
    chunker *c = chunker_new(0, 0);
    (void)state;

    memset(&ps, 0, sizeof ps);
    assert_int_equal(chunker_push(c, "Something the user interrupted", 30, on_piece, &ps), 0);
    chunker_reset(c);
    assert_int_equal(chunker_push(c, "A fresh answer now.", 19, on_piece, &ps), 0);
    assert_int_equal(chunker_flush(c, on_piece, &ps), 0);
    assert_int_equal(ps.n, 1);
    assert_string_equal(ps.p[0], "A fresh answer now.");
    pieces_free(&ps);
    chunker_free(c);
}

static void whitespace_only_input_emits_nothing(void **state)
{
    pieces ps = chunk(1, 0, "   \n\t  \n\n \r\n ", 0);
    (void)state;
    assert_int_equal(ps.n, 0);
    ps = chunk(1, 0, "", 0);
    assert_int_equal(ps.n, 0);
}

/* Much more text than the initial buffer, without a single boundary. */
static void buffer_grows_for_text_waiting_on_a_decision(void **state)
{
    pieces ps;
    chunker *c = chunker_new(0, 0);
    char spaces[4096];
    (void)state;

    memset(&ps, 0, sizeof ps);
    memset(spaces, ' ', sizeof spaces);
    /* "No." waits for the next word to know whether it is "No. 5". */
    assert_int_equal(chunker_push(c, "The score is No.", 16, on_piece, &ps), 0);
    assert_int_equal(chunker_push(c, spaces, sizeof spaces, on_piece, &ps), 0);
    assert_int_equal(ps.n, 0);
    assert_int_equal(chunker_push(c, "Yes it is.", 10, on_piece, &ps), 0);
    assert_int_equal(ps.n, 1);
    assert_string_equal(ps.p[0], "The score is No.");
    assert_int_equal(chunker_flush(c, on_piece, &ps), 0);
    assert_int_equal(ps.n, 2);
    assert_string_equal(ps.p[1], "Yes it is.");
    pieces_free(&ps);
    chunker_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(two_sentences_make_two_pieces),
        cmocka_unit_test(boundary_split_across_tokens_waits_for_the_next_character),
        cmocka_unit_test(byte_at_a_time_equals_all_at_once),
        cmocka_unit_test(numbers_do_not_split),
        cmocka_unit_test(abbreviations_do_not_split),
        cmocka_unit_test(single_capital_initials_do_not_split),
        cmocka_unit_test(no_before_a_digit_does_not_split),
        cmocka_unit_test(question_and_exclamation_marks_split),
        cmocka_unit_test(closing_quotes_stay_with_their_sentence),
        cmocka_unit_test(a_period_not_followed_by_whitespace_does_not_split),
        cmocka_unit_test(ellipsis_never_ends_a_piece),
        cmocka_unit_test(newline_ends_a_piece),
        cmocka_unit_test(pieces_shorter_than_min_chars_merge_with_the_next),
        cmocka_unit_test(long_text_without_stop_is_cut_at_the_last_space),
        cmocka_unit_test(long_text_is_cut_at_max_chars_when_a_word_ends_there),
        cmocka_unit_test(long_text_is_cut_after_a_clause_mark),
        cmocka_unit_test(long_word_is_cut_at_max_chars),
        cmocka_unit_test(utf8_is_never_split_inside_a_character),
        cmocka_unit_test(flush_emits_the_tail),
        cmocka_unit_test(reset_drops_buffered_text),
        cmocka_unit_test(whitespace_only_input_emits_nothing),
        cmocka_unit_test(buffer_grows_for_text_waiting_on_a_decision),
    };
    return cmocka_run_group_tests_name("chunker", tests, NULL, NULL);
}
