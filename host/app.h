/*
 * The daemon's shared state: settings, metrics registry, plugin instances and
 * the life-cycle phase the probes report. One per process, owned by main.c.
 */
#ifndef VOXRAY_APP_H
#define VOXRAY_APP_H

#include <stdatomic.h>

#include "base/cfg.h"
#include "plugin/plugins.h"
#include "settings.h"

typedef struct metrics_registry metrics_registry;
typedef struct acl acl;

typedef enum app_phase {
    APP_STARTING = 0, /* plugins initialising: /ready 503 "starting" */
    APP_RUNNING,
    APP_DRAINING      /* SIGTERM received: /ready 503 "draining" */
} app_phase;

typedef struct app {
    settings s;
    metrics_registry *reg;
    plug_set *plugins; /* loaded at start; once running, NULL: the store and sink
                        * are in plugin/services.h, the providers in stage.h */
    _Atomic(acl *) metrics_acl; /* NULL: /metrics open to everyone (SIGHUP swaps it) */
    atomic_int metrics_enabled;   /* [metrics] enabled (SIGHUP may change it) */
    atomic_int phase;
    atomic_int active_sessions;
} app;

#endif
