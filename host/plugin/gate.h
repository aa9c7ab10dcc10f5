/*
 * The call gate: the only way host code reaches a plugin. Every call is
 * timed and counted:
 *
 *   voxray_plugin_calls_total{kind,plugin,provider,op,status}  status = ok or the error name
 *   voxray_plugin_call_duration_seconds{kind,plugin,provider,op}
 *   voxray_plugin_inflight{kind,plugin,provider}
 *   voxray_plugin_info{plugin,provider,module,version,abi}      1 per initialised instance
 *
 * `plugin` is the instance name (as in [plugin.NAME] and the stage lists),
 * `module` the plugin file. `provider` repeats the instance name: the stage
 * families ({stt,llm,tts}_* and voxray_llm_tokens_total) carry it beside
 * their `model`, so {provider="x"} selects every series of one instance.
 * Series handles are resolved on an instance's
 * first call of each op (and outcome) and cached, so the cost per call is
 * two clock reads and a few relaxed atomic adds on per-CPU shards (no cache
 * line that two threads calling one plugin both write).
 */
#ifndef VOXRAY_GATE_H
#define VOXRAY_GATE_H

#include <stddef.h>
#include <voxray/plugin.h>

typedef struct metrics_registry metrics_registry;
typedef struct plug_instance plug_instance;
typedef struct gate_instance gate_instance;

/* Register the gate's families. Call once, before gate_instance_new. */
int gate_metrics_init(metrics_registry *reg);

/* Per-instance series cache; also sets voxray_plugin_info. NULL on OOM. */
gate_instance *gate_instance_new(metrics_registry *reg, plug_instance *pi);
void gate_instance_free(gate_instance *g);

/* Session store. Same contract as vx_store_vtable; err is filled on failure
 * (cleared first as the plugin ABI promises: code, retryable and
 * upstream_status 0, msg empty). *val of get is freed with free(). */
int gate_store_get(plug_instance *pi, const char *key, void **val, size_t *len, vx_error *err);
int gate_store_put(plug_instance *pi, const char *key, const void *val, size_t len,
                   uint32_t ttl_s, vx_error *err);
int gate_store_del(plug_instance *pi, const char *key, vx_error *err);
int gate_store_ping(plug_instance *pi, vx_error *err);

/* Recording sink: one blocking upload (vx_sink_vtable.upload), counted as
 * kind="sink", op="upload". err is cleared first (as for the store) and
 * always has a message on failure. */
int gate_sink_upload(plug_instance *pi, const vx_recording *rec, vx_error *err);

/* Generic accounting for calls made elsewhere (stage.c): begin raises
 * voxray_plugin_inflight, end lowers it and records the duration and the
 * outcome (rc 0 = ok, VX_ECANCELED = canceled, else the error name). */
typedef enum gate_op {
    GATE_OP_GET = 0,
    GATE_OP_PUT,
    GATE_OP_DEL,
    GATE_OP_PING,
    GATE_OP_TRANSCRIBE, /* stt stream */
    GATE_OP_GENERATE,   /* llm stream */
    GATE_OP_SYNTHESIZE, /* tts stream */
    GATE_OP_UPLOAD,     /* sink */
    GATE_OP_COUNT
} gate_op;
void gate_call_begin(plug_instance *pi, gate_op op);
void gate_call_end(plug_instance *pi, gate_op op, int rc, uint64_t duration_ns);

/* The plugin's optional health callback (ABI 1.1). Without one: 0 and
 * "available" in buf. */
int gate_health(plug_instance *pi, char *buf, size_t len);

/* Short lowercase name of a VX_E* code ("timeout", "unavailable", ...). */
const char *gate_error_name(int code);

#endif
