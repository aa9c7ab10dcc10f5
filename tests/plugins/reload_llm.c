/* An LLM whose reply and version are fixed when it is built: two builds of
 * this file stand for an old and a new release of one plugin, to replace
 * one with the other under a running daemon (tests/node/reload.test.mjs).
 * Keys: token_delay (time between the words of the reply), fail_init. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <voxray/plugin.h>

#ifndef RL_VERSION
#define RL_VERSION "1"
#endif
#ifndef RL_REPLY
#define RL_REPLY "Version one speaking."
#endif

typedef struct inst {
    const vx_host_api *host;
    int64_t delay_ms;
} inst;

struct vx_stream {
    pthread_t th;
    atomic_int cancel;
    vx_llm_events ev;
    int64_t delay_ms;
};

static const vx_config_key keys[] = {
    {"token_delay", VX_CFG_DURATION, "20ms", "time between the words of the reply", 0, 60000, NULL, 0},
    {"fail_init", VX_CFG_BOOL, "false", "make init fail (to test a reload that cannot init)", 0, 0, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0},
};

static int rl_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **out, vx_error *err)
{
    (void)cfg;
    int fail = 0;
    inst *i;
    host->config_bool(h, "fail_init", &fail);
    if (fail) {
        err->code = VX_EUNAVAIL;
        strcpy(err->msg, "fail_init is set");
        return VX_EUNAVAIL;
    }
    i = calloc(1, sizeof *i);
    if (i == NULL) return VX_ENOMEM;
    i->host = host;
    host->config_duration_ms(h, "token_delay", &i->delay_ms);
    *out = i;
    return VX_OK;
}

static void rl_shutdown(void *p) { free(p); }

static void *run(void *arg)
{
    vx_stream *s = arg;
    const char *w = RL_REPLY;
    while (*w) {
        if (atomic_load(&s->cancel)) {
            vx_error e = {VX_ECANCELED, 0, 0, "canceled"};
            s->ev.on_error(s->ev.user, &e);
            return NULL;
        }
        const char *sp = strchr(w, ' ');
        size_t n = sp ? (size_t)(sp - w) + 1 : strlen(w);
        s->ev.on_token(s->ev.user, w, n);
        w += n;
        struct timespec ts = {s->delay_ms / 1000, (long)(s->delay_ms % 1000) * 1000000L};
        for (int64_t left = s->delay_ms; left > 0 && !atomic_load(&s->cancel); left -= 10) {
            ts.tv_sec = 0;
            ts.tv_nsec = (left < 10 ? left : 10) * 1000000L;
            nanosleep(&ts, NULL);
        }
    }
    s->ev.on_done(s->ev.user, NULL);
    return NULL;
}

static int rl_generate(void *p, const vx_message *msgs, size_t n, const vx_llm_params *params,
                       const vx_llm_events *ev, vx_stream **out, vx_error *err)
{
    (void)msgs;
    (void)n;
    (void)params;
    inst *i = p;
    vx_stream *s = calloc(1, sizeof *s);
    if (s == NULL) return VX_ENOMEM;
    s->ev = *ev;
    s->delay_ms = i->delay_ms;
    if (pthread_create(&s->th, NULL, run, s) != 0) {
        free(s);
        strcpy(err->msg, "cannot start a thread");
        return VX_EINTERNAL;
    }
    *out = s;
    return VX_OK;
}

static void rl_cancel(vx_stream *s) { atomic_store(&s->cancel, 1); }

static void rl_close(vx_stream *s)
{
    atomic_store(&s->cancel, 1);
    pthread_join(s->th, NULL);
    free(s);
}

static const vx_llm_vtable llm = {
    .struct_size = sizeof(vx_llm_vtable),
    .generate = rl_generate,
    .cancel = rl_cancel,
    .close = rl_close,
};

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_LLM,
    .name = "reload_llm",
    .version = RL_VERSION,
    .description = "an LLM with a reply fixed at build time (reload tests)",
    .config = keys,
    .init = rl_init,
    .shutdown = rl_shutdown,
    .llm = &llm,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host)
{
    (void)host;
    return &info;
}
