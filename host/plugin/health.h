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
/* Last status of an instance (by position in app->plugins->inst). */
int health_instance_ok(size_t idx, char *detail, size_t len);

#endif
