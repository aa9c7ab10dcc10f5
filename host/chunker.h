/*
 * Sentence chunker: turns a stream of LLM tokens into pieces of text that
 * are worth sending to TTS on their own — a sentence, or a clause when the
 * sentence runs long — so the first audio starts before the whole answer
 * exists.
 *
 * A piece ends at '.', '!', '?', '…' or a newline followed by whitespace or
 * end of input, never inside a number ("3.14"), an abbreviation ("Dr.",
 * "e.g.", "U.S.") or an ellipsis run ("..."). Pieces shorter than min_chars
 * are merged with the next one; past max_chars the chunker cuts at the last
 * ',', ';', ':' or space. Leading/trailing whitespace is trimmed; empty
 * pieces are never emitted. UTF-8 is never split inside a character.
 */
#ifndef VOXRAY_CHUNKER_H
#define VOXRAY_CHUNKER_H

#include <stddef.h>

typedef struct chunker chunker;

/* min_chars default 12, max_chars default 200 (0 = default). */
chunker *chunker_new(size_t min_chars, size_t max_chars);
void chunker_free(chunker *c);
/* Append text; cb is called for each complete piece (NUL-terminated, valid
 * during the call). Returns 0 or -1 on allocation failure. */
int chunker_push(chunker *c, const char *text, size_t len,
                 void (*cb)(void *user, const char *piece), void *user);
/* End of input: emit whatever remains. */
int chunker_flush(chunker *c, void (*cb)(void *user, const char *piece), void *user);
/* Drop buffered text (barge-in). */
void chunker_reset(chunker *c);

#endif
