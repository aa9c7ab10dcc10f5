/*
 * Sentence chunker: turns a stream of LLM tokens into pieces of text that
 * are worth sending to TTS on their own — a sentence, or a clause when the
 * sentence runs long — so the first audio starts before the whole answer
 * exists.
 *
 * A piece ends at a newline, or at '.', '!' or '?' (a run like "?!",
 * optionally followed by closing quotes/brackets) followed by whitespace or
 * end of input. It never ends inside a number ("3.14", "1,000.50"), after an
 * abbreviation (case-insensitive Mr Mrs Ms Dr Prof Sr Jr St vs etc e.g i.e
 * U.S a.m p.m, "No" before a digit, a single capital letter as in
 * "J. Smith"), or at an ellipsis ("..", "...", "…": they never end a piece).
 * Pieces shorter than min_chars are merged with the next one; when max_chars
 * characters pass without an end, the chunker cuts after the last ',', ';'
 * or ':' (followed by whitespace) in the second half of them, else at the
 * last space, else at the limit. Leading/trailing whitespace is trimmed;
 * empty pieces are never emitted. Lengths count UTF-8 characters, and UTF-8
 * is never split inside a character.
 *
 * A boundary is decided only once the text after it is known, so the pieces
 * do not depend on how the text was split across chunker_push calls.
 */
#ifndef VOXRAY_CHUNKER_H
#define VOXRAY_CHUNKER_H

#include <stddef.h>

typedef struct chunker chunker;

/* min_chars default 12, max_chars default 200 (0 = default). */
chunker *chunker_new(size_t min_chars, size_t max_chars);
void chunker_free(chunker *c);
/* Append text; cb is called for each complete piece (NUL-terminated, valid
 * during the call; cb must not call back into this chunker). Returns 0, or
 * -1 on allocation failure (the text is then not appended). */
int chunker_push(chunker *c, const char *text, size_t len,
                 void (*cb)(void *user, const char *piece), void *user);
/* End of input: emit whatever remains. */
int chunker_flush(chunker *c, void (*cb)(void *user, const char *piece), void *user);
/* Drop buffered text (barge-in). */
void chunker_reset(chunker *c);

#endif
