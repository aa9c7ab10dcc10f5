/*
 * Session state in the session store, for resuming a session by id on any
 * instance that shares the store. See persist.c (the store traffic) and
 * persist_state.c (the JSON document).
 */
#ifndef VOXRAY_PERSIST_H
#define VOXRAY_PERSIST_H

#include <stddef.h>

typedef struct session session;
typedef struct conversation conversation;

/* 1 if id is a plausible session id ([A-Za-z0-9_-], at most 64 bytes). */
int persist_valid_id(const char *id);
/* Mark the session's settled state changed (session strand; returns at
 * once). It is saved after the work already queued on the session strand,
 * coalesced with the changes that come meanwhile; the store call runs on
 * the session's persist strand, one at a time. */
void persist_save(session *s);
/* Load session `id` into s (conversation, instructions, voice, id).
 * Blocking (the store's timeout bounds it); call on the session strand
 * before any client event is handled. 0; -1 when there is no such session
 * (or its state is unreadable); -2 when the store failed (the session may
 * well exist: retry later). The reason is in why. */
int persist_restore(session *s, const char *id, char *why, size_t len);

/* The document saved for a session: its id, instructions and voice (NULL:
 * left out) and the settled items of conv. malloc'd text, or NULL when
 * memory ran out. */
char *persist_state_encode(const conversation *conv, const char *id, const char *instructions,
                           const char *voice);
/* Read a saved document (len bytes, not NUL-terminated): its items are
 * added to conv, and *instructions / *voice replaced (freed, then
 * malloc'd) when it has them. 0, or -1 when it is not a document of this
 * version (nothing is changed then). */
int persist_state_decode(const void *text, size_t len, conversation *conv, char **instructions,
                         char **voice);

#endif
