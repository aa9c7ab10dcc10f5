/*
 * transcript: the text of an OpenAI-style transcription answer, for
 * stt_openai.
 */
#ifndef VX_STT_TRANSCRIPT_H
#define VX_STT_TRANSCRIPT_H

#include <stddef.h>

#include <voxray/plugin.h>

/* The "text" of a transcription answer (response_format=json, len bytes),
 * blanks trimmed at both ends (Whisper starts it with a space), as a
 * malloc'd string; or NULL with err filled: VX_EPROTO for a body that is
 * not JSON or has no string "text" (the server's own error message, if it
 * sent one, is quoted), VX_ENOMEM. */
char *stt_transcript(const char *body, size_t len, vx_error *err);

#endif
