/*
 * The session store and the recording sink in service, as generations a
 * SIGHUP replaces (as stage.c does for the stage providers).
 *
 * A generation owns a plug_set holding the store and, when recording is
 * on, the sink. Every user takes a reference for the length of one call
 * (a store get/put/ping, one upload attempt), so a reload never pulls an
 * instance out from under a call: a call that started before the reload
 * finishes on the old instance, every call after it goes to the new one.
 * A replaced generation is freed on the main thread (svc_collect) once its
 * last call returned; its instances that the new generation does not share
 * are shut down then and their files unloaded.
 */
#ifndef VOXRAY_SERVICES_H
#define VOXRAY_SERVICES_H

#include "plugin/plugins.h"

typedef struct svc_gen svc_gen;

/* Make ps (store and sink initialised) the first generation; it is owned
 * from here on. 0, or -1 out of memory (ps is then the caller's). */
int svc_init(plug_set *ps);
/* Make ps the generation every later call uses; the running one is freed
 * once its last call returned. 0, or -1 out of memory (ps stays the
 * caller's and nothing changed). */
int svc_reload(plug_set *ps);
/* The current generation with a reference (NULL before svc_init or after
 * svc_shutdown). Any thread; release it when the call returned. */
svc_gen *svc_acquire(void);
void svc_release(svc_gen *g);
/* Its store (never NULL) and sink (NULL when recording is off). */
plug_instance *svc_store(const svc_gen *g);
plug_instance *svc_sink(const svc_gen *g);
const plug_set *svc_plugins(const svc_gen *g);
/* Its number: each reload makes a new one. */
unsigned long svc_id(const svc_gen *g);
/* Free the replaced generations no call uses any more (instances shut
 * down, files unloaded). Main thread. Returns how many were freed. */
int svc_collect(void);
/* Generations alive: 1 normally, more while a replaced one still has a
 * call running. */
int svc_generations(void);
/* Drop the current generation and collect (after every caller stopped). */
void svc_shutdown(void);

#endif
