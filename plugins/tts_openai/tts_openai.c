/*
 * tts_openai: speech from an OpenAI-compatible server (OpenAI,
 * Kokoro-FastAPI, speaches) through POST {base_url}/audio/speech.
 *
 * The request asks for response_format "pcm": the body is then raw s16le
 * mono samples at a rate the API does not state (24 kHz for OpenAI,
 * Kokoro and speaches; the sample_rate key says it). The body is streamed
 * to on_audio as it arrives, in chunks of at least 20 ms (a read may end in
 * the middle of a sample: its first byte waits for the next read), and
 * on_done follows the end of the body.
 *
 * Threads: the instance's oai_client runs every request on its driver
 * thread, which delivers all events of a stream; close() waits for the
 * driver to let go of the request (see oai_client.h).
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "oai_client.h"
#include "pcm.h"

#define TTS_VERSION "1.0.0"
#define TTS_NAME "tts_openai"
#define TTS_MIN_CHUNK_MS 20

static const vx_config_key tts_config[] = {
    OAI_CONFIG_KEYS("tts-1", "60s"),
    {"voice", VX_CFG_STRING, "alloy",
     "voice when the caller names none (OpenAI: alloy, echo, nova...; Kokoro: af_heart...)",
     0, 256, NULL, 0},
    {"sample_rate", VX_CFG_INT, "24000",
     "rate of the server's raw PCM (OpenAI, Kokoro-FastAPI and speaches: 24000)", 8000, 48000,
     NULL, 0},
    {"speed", VX_CFG_FLOAT, "0", "speaking speed, 0.25 to 4 (0: none sent, the server's 1.0)", 0,
     4, NULL, 0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

typedef struct tts_inst {
    const vx_host_api *api;
    vx_host *h;
    oai_conf cf;
    char *voice;
    long rate;
    double speed; /* 0: not sent */
    size_t min_chunk; /* frames */
    oai_client *client;
} tts_inst;

/* One synthesis. After start, only the driver thread touches it until
 * close() has stopped the request. */
struct vx_stream {
    tts_inst *in;
    vx_tts_events ev;
    oai_call *call; /* NULL for a text with nothing to say */
    int16_t *buf;   /* samples not delivered yet */
    size_t frames, cap;
    pcm16 pcm;   /* a sample split across reads */
    int checked; /* the Content-Type was looked at */
    int ended;
};

/* ---------------------------------------------------------------- events */

static void tts_flush(vx_stream *s) {
    if (s->frames) s->ev.on_audio(s->ev.user, s->buf, s->frames);
    s->frames = 0;
}

static int tts_body(void *ctx, const char *p, size_t n, vx_error *err) {
    vx_stream *s = ctx;
    size_t need;

    if (!s->checked) {
        const char *ct = oai_call_content_type(s->call);
        s->checked = 1;
        if (!pcm16_playable(ct)) {
            oai_seterr(err, VX_EPROTO, 0, 0, TTS_NAME ": the server sent %s, not raw PCM", ct);
            return VX_EPROTO;
        }
    }
    need = s->frames + n / 2 + 1;
    if (need > s->cap) {
        int16_t *q = realloc(s->buf, need * sizeof(*q));
        if (!q) {
            oai_seterr(err, VX_ENOMEM, 1, 0, TTS_NAME ": out of memory reading audio");
            return VX_ENOMEM;
        }
        s->buf = q;
        s->cap = need;
    }
    s->frames += pcm16_take(&s->pcm, (const unsigned char *)p, n, s->buf + s->frames);
    if (s->frames >= s->in->min_chunk) tts_flush(s);
    return 0;
}

static void tts_end(void *ctx, const vx_error *e) {
    vx_stream *s = ctx;

    if (s->ended) return;
    s->ended = 1;
    if (e->code != VX_OK) {
        s->ev.on_error(s->ev.user, e);
        return;
    }
    tts_flush(s);
    if (s->pcm.has_odd)
        s->in->api->log(s->in->h, VX_LOG_WARN, "the audio ended in half a sample; dropped it");
    s->ev.on_done(s->ev.user);
}

static const oai_call_ops tts_ops = {tts_body, tts_end};

/* ---------------------------------------------------------------- vtable */

static json_t *tts_request(tts_inst *in, const char *text, const char *voice, vx_error *err) {
    json_t *body = json_object();
    json_t *input = json_string(text);

    if (!input) {
        json_decref(body);
        oai_seterr(err, VX_EINVAL, 0, 0, TTS_NAME ": the text is not valid UTF-8");
        return NULL;
    }
    if (!body || json_object_set_new(body, "model", json_string(in->cf.model)) ||
        json_object_set_new(body, "input", input) ||
        json_object_set_new(body, "voice", json_string(voice)) ||
        json_object_set_new(body, "response_format", json_string("pcm")) ||
        (in->speed > 0 && json_object_set_new(body, "speed", json_real(in->speed)))) {
        json_decref(body);
        oai_seterr(err, VX_ENOMEM, 1, 0, TTS_NAME ": out of memory building the request");
        return NULL;
    }
    return body;
}

static void tts_free(vx_stream *s) {
    free(s->buf);
    free(s);
}

static int tts_blank(const char *t) {
    while (isspace((unsigned char)*t)) t++;
    return *t == '\0';
}

/* Fails with VX_EINVAL (no text, not UTF-8, missing callbacks), VX_ENOMEM.
 * Upstream failures arrive through on_error. A text with nothing to say
 * gets on_done at once, from this call, without a request. */
static int tts_synthesize(void *inst, const char *text, const char *voice, vx_audio_format *fmt,
                          const vx_tts_events *ev, vx_stream **out, vx_error *err) {
    tts_inst *in = inst;
    vx_tts_events e = {0};
    vx_stream *s = NULL;
    json_t *body = NULL;
    int rc;

    *out = NULL;
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!text || !fmt || !e.on_audio || !e.on_done || !e.on_error) {
        oai_seterr(err, VX_EINVAL, 0, 0, TTS_NAME ": synthesize needs text, fmt and all three events");
        return VX_EINVAL;
    }
    if (!(s = calloc(1, sizeof(*s)))) {
        oai_seterr(err, VX_ENOMEM, 1, 0, TTS_NAME ": out of memory starting a synthesis");
        return VX_ENOMEM;
    }
    s->in = in;
    s->ev = e;
    fmt->sample_rate = (uint32_t)in->rate;
    fmt->channels = 1;
    fmt->encoding = VX_PCM_S16LE;
    if (tts_blank(text)) {
        *out = s;
        s->ended = 1;
        e.on_done(e.user);
        return VX_OK;
    }
    if (!(body = tts_request(in, text, voice && *voice ? voice : in->voice, err))) {
        rc = err->code;
        goto fail;
    }
    if ((rc = oai_call_new(in->client, "/audio/speech", &tts_ops, s, &s->call, err)) != VX_OK ||
        (rc = oai_call_json(s->call, body, err)) != VX_OK)
        goto fail;
    json_decref(body);
    *out = s;
    oai_call_start(s->call);
    return VX_OK;
fail:
    json_decref(body);
    oai_call_close(s->call);
    tts_free(s);
    return rc;
}

static void tts_cancel(vx_stream *s) {
    if (s->call) oai_call_cancel(s->call);
}

static void tts_close(vx_stream *s) {
    oai_call_close(s->call);
    tts_free(s);
}

static const vx_tts_vtable tts_vtable = {
    .struct_size = sizeof(vx_tts_vtable),
    .synthesize = tts_synthesize,
    .cancel = tts_cancel,
    .close = tts_close,
};

/* ---------------------------------------------------------------- lifecycle */

static void tts_shutdown(void *inst) {
    tts_inst *in = inst;

    if (!in) return;
    oai_client_free(in->client);
    oai_conf_free(&in->cf);
    free(in->voice);
    free(in);
}

/* Fails with VX_EINVAL naming a key whose value does not parse (the host
 * validated them, so only a direct caller gets there), VX_ENOMEM. */
static int tts_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                    vx_error *err) {
    tts_inst *in = calloc(1, sizeof(*in));
    const char *bad = NULL;
    char desc[512];
    int rc;

    if (!in) {
        oai_seterr(err, VX_ENOMEM, 0, 0, TTS_NAME ": out of memory at init");
        return VX_ENOMEM;
    }
    in->api = host;
    in->h = h;
    if ((rc = oai_conf_load(&in->cf, TTS_NAME, host, h, cfg, tts_config, err)) != VX_OK) {
        free(in);
        return rc;
    }
    if (oai_cfg_long(host, h, "sample_rate", &in->rate) != 0 ||
        in->rate < 8000 || in->rate > 48000)
        bad = "sample_rate";
    else if (host->config_float(h, "speed", &in->speed) != VX_OK ||
             in->speed < 0 || in->speed > 4)
        bad = "speed";
    if (bad) {
        oai_seterr(err, VX_EINVAL, 0, 0, TTS_NAME ": bad value for %s: '%s'", bad,
                   oai_cfg(cfg, tts_config, bad));
        tts_shutdown(in);
        return VX_EINVAL;
    }
    in->min_chunk = (size_t)in->rate * TTS_MIN_CHUNK_MS / 1000;
    if (!(in->voice = strdup(oai_cfg(cfg, tts_config, "voice")))) {
        oai_seterr(err, VX_ENOMEM, 0, 0, TTS_NAME ": out of memory at init");
        tts_shutdown(in);
        return VX_ENOMEM;
    }
    if ((rc = oai_client_new(host, h, &in->cf, &in->client, err)) != VX_OK) {
        tts_shutdown(in);
        return rc;
    }
    oai_conf_describe(&in->cf, desc, sizeof(desc));
    host->log(h, VX_LOG_INFO, "%s voice=%s sample_rate=%ld", desc, in->voice, in->rate);
    *inst = in;
    return VX_OK;
}

static int tts_health(void *inst, char *buf, size_t len) {
    return oai_client_health(((tts_inst *)inst)->client, buf, len);
}

static const vx_plugin_info tts_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_TTS,
    .name = TTS_NAME,
    .version = TTS_VERSION,
    .description = "streamed speech from an OpenAI-compatible server "
                   "(OpenAI, Kokoro-FastAPI, speaches)",
    .caps = VX_CAP_STREAMING_OUTPUT | VX_CAP_MULTILINGUAL | VX_CAP_NETWORK,
    .config = tts_config,
    .init = tts_init,
    .shutdown = tts_shutdown,
    .tts = &tts_vtable,
    .health = tts_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* The settings are read with the typed config getters (1.6). */
    if (!oai_host_ok(host)) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, TTS_NAME " needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &tts_info;
}
