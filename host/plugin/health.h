/*
 * Health checks: a thread that pings the session store (through the call
 * gate) and asks every provider instance for its status every
 * [server] health_interval. The HTTP handlers read the cached results, so a
 * probe never waits on Redis.
 */
#ifndef VOXRAY_HEALTH_H
#define VOXRAY_HEALTH_H

#include <stddef.h>

#include "app.h"

/* Run one round synchronously, then start the thread. 0 or -1. */
int health_start(app *a);
void health_stop(void);

/* Last store result: 1 ok / 0 failing, with detail text. */
int health_store_ok(char *detail, size_t len);
/* A reload put a new session store in service after its ping answered:
 * the store check reads ok for it at once, and a round runs now. */
void health_store_switched(void);
/* Last status of an instance (the store and sink in service, the
 * stage providers of the current generation; an instance added by a
 * reload reads "not checked yet" until its first round). */
int health_instance_ok(const plug_instance *pi, char *detail, size_t len);
/* Run a round now (after a reload added instances). */
void health_kick(void);

#endif
