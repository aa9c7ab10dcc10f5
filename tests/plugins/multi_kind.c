/* Proves one plugin may offer STT, LLM and TTS at once, with a typed config schema. */
#include <stdlib.h>
#include <string.h>

#include <voxray/plugin.h>

typedef struct mk_inst {
    char *greeting;
} mk_inst;

/* One stream type for all three kinds; each kind uses its own events. */
struct vx_stream {
    const vx_stt_events *stt;
    size_t frames;
};

static const char *mk_cfg(const vx_config *cfg, const char *key) {
    size_t i;

    for (i = 0; cfg && i < cfg->n_items; i++)
        if (strcmp(cfg->items[i].key, key) == 0) return cfg->items[i].value;
    return NULL;
}

static int mk_init(const vx_host_api *host, vx_host *h, const vx_config *cfg,
                   void **inst, vx_error *err) {
    const char *g = mk_cfg(cfg, "greeting");
    mk_inst *m = calloc(1, sizeof(*m));

    if (m == NULL || (m->greeting = strdup(g ? g : "hello")) == NULL) {
        free(m);
        err->code = VX_ENOMEM;
        strcpy(err->msg, "out of memory");
        return VX_ENOMEM;
    }
    *inst = m;
    return VX_OK;
}

static void mk_shutdown(void *inst) {
    mk_inst *m = inst;

    if (m == NULL) return;
    free(m->greeting);
    free(m);
}

static int mk_new(vx_stream **out, vx_error *err) {
    *out = calloc(1, sizeof(**out));
    if (*out) return VX_OK;
    err->code = VX_ENOMEM;
    strcpy(err->msg, "out of memory");
    return VX_ENOMEM;
}

static void mk_cancel(vx_stream *s) {}
static void mk_close(vx_stream *s) { free(s); }

/* STT: hears "hello" in anything non-empty. */
static int mk_stt_open(void *inst, const vx_audio_format *fmt, const vx_stt_events *ev,
                       vx_stream **out, vx_error *err) {
    int rc = mk_new(out, err);

    if (rc == VX_OK) (*out)->stt = ev;
    return rc;
}

static int mk_stt_feed(vx_stream *s, const int16_t *pcm, size_t frames, vx_error *err) {
    s->frames += frames;
    return VX_OK;
}

static int mk_stt_finish(vx_stream *s, vx_error *err) {
    s->stt->on_final(s->stt->user, s->frames ? "hello" : "", s->frames ? 1.0f : -1.0f);
    s->frames = 0;
    return VX_OK;
}

/* LLM: answers with the configured greeting. */
static int mk_generate(void *inst, const vx_message *msgs, size_t n,
                       const vx_llm_params *params, const vx_llm_events *ev,
                       vx_stream **out, vx_error *err) {
    mk_inst *m = inst;
    const char *g = m ? m->greeting : "hello";
    int rc = mk_new(out, err);

    if (rc != VX_OK) return rc;
    ev->on_token(ev->user, g, strlen(g));
    ev->on_done(ev->user, NULL);
    return VX_OK;
}

/* TTS: 10 ms of silence per call. */
static int mk_synthesize(void *inst, const char *text, const char *voice,
                         vx_audio_format *fmt, const vx_tts_events *ev,
                         vx_stream **out, vx_error *err) {
    static const int16_t silence[160];
    int rc = mk_new(out, err);

    if (rc != VX_OK) return rc;
    fmt->sample_rate = 16000;
    fmt->channels = 1;
    fmt->encoding = VX_PCM_S16LE;
    ev->on_audio(ev->user, silence, 160);
    ev->on_done(ev->user);
    return VX_OK;
}

static const vx_stt_vtable stt = {
    .struct_size = sizeof(vx_stt_vtable),
    .open = mk_stt_open,
    .feed = mk_stt_feed,
    .finish = mk_stt_finish,
    .cancel = mk_cancel,
    .close = mk_close,
};

static const vx_llm_vtable llm = {
    .struct_size = sizeof(vx_llm_vtable),
    .generate = mk_generate,
    .cancel = mk_cancel,
    .close = mk_close,
};

static const vx_tts_vtable tts = {
    .struct_size = sizeof(vx_tts_vtable),
    .synthesize = mk_synthesize,
    .cancel = mk_cancel,
    .close = mk_close,
};

static const vx_config_key schema[] = {
    { .key = "api_key", .type = VX_CFG_STRING, .help = "credential for the service",
      .flags = VX_CFG_REQUIRED | VX_CFG_SECRET },
    { .key = "greeting", .type = VX_CFG_STRING, .def = "hello",
      .help = "what the LLM answers", .max = 64 },
    { .key = "max_tokens", .type = VX_CFG_INT, .def = "256",
      .help = "longest answer", .min = 1, .max = 4096 },
    { .key = "temperature", .type = VX_CFG_FLOAT, .def = "0.7",
      .help = "sampling temperature", .min = 0, .max = 2 },
    { .key = "voice", .type = VX_CFG_ENUM, .def = "alice", .help = "TTS voice",
      .choices = "alice|bob" },
    { .key = "timeout", .type = VX_CFG_DURATION, .def = "2s",
      .help = "per-call deadline", .min = 1, .max = 60000 },
    { .key = "partials", .type = VX_CFG_BOOL, .def = "true",
      .help = "emit partial transcripts" },
    { .key = "endpoint", .type = VX_CFG_ADDRESS, .def = "127.0.0.1:9",
      .help = "service address" },
    { .key = NULL },
};

static const vx_plugin_info info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STT | VX_KIND_LLM | VX_KIND_TTS,
    .name = "multi_kind",
    .version = "2.3.4",
    .description = "trivial STT, LLM and TTS in one file",
    .caps = VX_CAP_STREAMING_OUTPUT,
    .config = schema,
    .init = mk_init,
    .shutdown = mk_shutdown,
    .stt = &stt,
    .llm = &llm,
    .tts = &tts,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    return &info;
}
