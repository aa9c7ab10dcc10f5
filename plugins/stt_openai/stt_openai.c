/*
 * stt_openai: transcription by an OpenAI-compatible server (OpenAI,
 * speaches, whisper.cpp server, vLLM) through POST
 * {base_url}/audio/transcriptions.
 *
 * These APIs take a whole recording, so the stream buffers the audio of an
 * utterance (up to max_seconds) and, at finish(), posts it as a 16-bit mono
 * WAV built in memory, in a multipart form with the model and
 * response_format=json; the "text" of the answer becomes the one on_final.
 * No partials. An utterance without audio gets on_final("") and no request.
 *
 * A stream may finish a second utterance while the first is still being
 * transcribed: utterances wait in a queue and go out one request at a time,
 * so finals keep their order. Events come from the instance's driver thread
 * (a request's result), or from the thread that made one deliverable
 * without a request (finish of an empty utterance, cancel of an idle
 * stream). `busy` lets one thread at a time deliver, so events never race
 * each other and close() can wait for the last one.
 */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "oai_client.h"
#include "transcript.h"

#define STT_VERSION "1.0.0"
#define STT_NAME "stt_openai"
#define STT_RATE 16000
/* A transcription answer larger than this is not one. */
#define STT_BODY_MAX (1u << 20)
#define STT_WAV_HEADER 44

static const vx_config_key stt_config[] = {
    OAI_CONFIG_KEYS("whisper-1", "30s"),
    {"language", VX_CFG_STRING, "",
     "ISO-639-1 language of the speech (e.g. en); empty lets the server detect it", 0, 16, NULL,
     0},
    {"prompt", VX_CFG_STRING, "",
     "text to guide the transcription (spelling of names, style); empty sends none", 0, 4096,
     NULL, 0},
    {"max_seconds", VX_CFG_INT, "60",
     "longest utterance accepted; more audio fails the stream with VX_EINVAL", 1, 3600, NULL,
     0},
    {NULL, 0, NULL, NULL, 0, 0, NULL, 0}};

typedef struct stt_inst {
    const vx_host_api *api;
    vx_host *h;
    oai_conf cf;
    char *language;
    char *prompt;
    long max_seconds;
    oai_client *client;
} stt_inst;

/* A finished utterance waiting for its request. */
typedef struct stt_utt {
    struct stt_utt *next;
    size_t len; /* bytes of wav; 0: nothing was heard */
    unsigned char wav[];
} stt_utt;

struct vx_stream {
    stt_inst *in;
    vx_stt_events ev;
    uint32_t rate;
    size_t max_frames;
    /* The utterance being fed; feed and finish only (the host serializes
     * them). */
    int16_t *pcm;
    size_t n, cap;
    int too_long;
    /* The answer of the current request; driver thread only. */
    char *body;
    size_t body_len;
    /* Guarded by mu. */
    pthread_mutex_t mu;
    pthread_cond_t cv; /* busy went to 0 */
    stt_utt *head, *tail;
    oai_call *cur; /* the request in flight */
    int busy;      /* a thread is delivering events */
    int canceled, ended, closing;
    int end_code; /* why the stream ended */
};

/* ---------------------------------------------------------------- WAV */

static void stt_le16(unsigned char *p, uint16_t v) {
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}

static void stt_le32(unsigned char *p, uint32_t v) {
    for (int i = 0; i < 4; i++) p[i] = (unsigned char)(v >> (8 * i));
}

/* The utterance as a RIFF/WAVE file, or an empty utterance when no audio
 * was fed. NULL when out of memory. */
static stt_utt *stt_wav(const int16_t *pcm, size_t n, uint32_t rate) {
    size_t data = n * 2, len = n ? STT_WAV_HEADER + data : 0;
    stt_utt *u = malloc(sizeof(*u) + len);
    unsigned char *w;

    if (!u) return NULL;
    u->next = NULL;
    u->len = len;
    if (!n) return u;
    w = u->wav;
    memcpy(w, "RIFF", 4);
    stt_le32(w + 4, (uint32_t)(36 + data));
    memcpy(w + 8, "WAVEfmt ", 8);
    stt_le32(w + 16, 16);       /* fmt chunk size */
    stt_le16(w + 20, 1);        /* PCM */
    stt_le16(w + 22, 1);        /* mono */
    stt_le32(w + 24, rate);
    stt_le32(w + 28, rate * 2); /* bytes per second */
    stt_le16(w + 32, 2);        /* bytes per frame */
    stt_le16(w + 34, 16);       /* bits per sample */
    memcpy(w + 36, "data", 4);
    stt_le32(w + 40, (uint32_t)data);
    for (size_t i = 0; i < n; i++) stt_le16(w + STT_WAV_HEADER + 2 * i, (uint16_t)pcm[i]);
    return u;
}

/* ---------------------------------------------------------------- delivery */

static void stt_drop_queue(vx_stream *s) {
    while (s->head) {
        stt_utt *u = s->head;
        s->head = u->next;
        free(u);
    }
    s->tail = NULL;
}

/* The stream fails: queued utterances are dropped and, with mu dropped,
 * the one on_error goes out. mu held, busy set. */
static void stt_fail(vx_stream *s, const vx_error *e) {
    s->ended = 1;
    s->end_code = e->code;
    stt_drop_queue(s);
    pthread_mutex_unlock(&s->mu);
    s->ev.on_error(s->ev.user, e);
    pthread_mutex_lock(&s->mu);
}

static int stt_field(curl_mime *form, const char *name, const char *value) {
    curl_mimepart *part = curl_mime_addpart(form);

    return !part || curl_mime_name(part, name) != CURLE_OK ||
                   curl_mime_data(part, value, CURL_ZERO_TERMINATED) != CURLE_OK
               ? -1
               : 0;
}

static const oai_call_ops stt_ops;

/* Post one utterance; on success it is the current request. mu held. Fails
 * with VX_ENOMEM. */
static int stt_request(vx_stream *s, const stt_utt *u, vx_error *err) {
    stt_inst *in = s->in;
    oai_call *k;
    curl_mime *form;
    curl_mimepart *part;
    int rc;

    if ((rc = oai_call_new(in->client, "/audio/transcriptions", &stt_ops, s, &k, err)) != VX_OK)
        return rc;
    /* curl_mime_data copies the WAV: the utterance can go once this returns. */
    if (!(form = oai_call_form(k)) || !(part = curl_mime_addpart(form)) ||
        curl_mime_name(part, "file") != CURLE_OK ||
        curl_mime_data(part, (const char *)u->wav, u->len) != CURLE_OK ||
        curl_mime_filename(part, "audio.wav") != CURLE_OK ||
        curl_mime_type(part, "audio/wav") != CURLE_OK ||
        stt_field(form, "model", in->cf.model) != 0 ||
        stt_field(form, "response_format", "json") != 0 ||
        (*in->language && stt_field(form, "language", in->language) != 0) ||
        (*in->prompt && stt_field(form, "prompt", in->prompt) != 0)) {
        oai_call_close(k);
        oai_seterr(err, VX_ENOMEM, 1, 0, STT_NAME ": out of memory building the request");
        return VX_ENOMEM;
    }
    s->body_len = 0;
    s->cur = k;
    oai_call_start(k);
    return VX_OK;
}

/* Deliver what can be delivered now: the final of an empty utterance, a
 * pending cancel, or the start of the next request. Called with mu held and
 * busy set; returns with mu held and busy clear. */
static void stt_pump(vx_stream *s) {
    vx_error e;

    while (!s->closing && !s->ended && !s->cur) {
        stt_utt *u = s->head;
        if (s->canceled) {
            oai_seterr(&e, VX_ECANCELED, 0, 0, STT_NAME ": cancelled");
            stt_fail(s, &e);
            break;
        }
        if (!u) break;
        s->head = u->next;
        if (!s->head) s->tail = NULL;
        if (u->len == 0) {
            pthread_mutex_unlock(&s->mu);
            s->ev.on_final(s->ev.user, "", -1.0f);
            pthread_mutex_lock(&s->mu);
        } else {
            memset(&e, 0, sizeof(e));
            if (stt_request(s, u, &e) != VX_OK) stt_fail(s, &e);
        }
        free(u);
    }
    s->busy = 0;
    pthread_cond_broadcast(&s->cv);
}

static int stt_body(void *ctx, const char *p, size_t n, vx_error *err) {
    vx_stream *s = ctx;
    char *b;

    if (s->body_len + n > STT_BODY_MAX) {
        oai_seterr(err, VX_EPROTO, 0, 0, STT_NAME ": the answer exceeds %u bytes", STT_BODY_MAX);
        return VX_EPROTO;
    }
    if (!(b = realloc(s->body, s->body_len + n + 1))) {
        oai_seterr(err, VX_ENOMEM, 1, 0, STT_NAME ": out of memory reading the answer");
        return VX_ENOMEM;
    }
    memcpy(b + s->body_len, p, n);
    s->body = b;
    s->body_len += n;
    return 0;
}

/* The current request is over: deliver its final (or the failure), then go
 * on with the queue. Driver thread. */
static void stt_end(void *ctx, const vx_error *res) {
    vx_stream *s = ctx;
    oai_call *k;
    vx_error e = *res;
    char *text = NULL;

    pthread_mutex_lock(&s->mu);
    k = s->cur; /* one request at a time: this is the one ending */
    if (!k || s->closing) { /* close() took the request: it wants no event */
        pthread_mutex_unlock(&s->mu);
        return;
    }
    s->cur = NULL;
    oai_call_close(k); /* on the driver thread: freed once this returns */
    s->busy = 1;
    if (e.code == VX_OK && !s->canceled) text = stt_transcript(s->body, s->body_len, &e);
    else if (s->canceled) oai_seterr(&e, VX_ECANCELED, 0, 0, STT_NAME ": cancelled");
    if (text) {
        pthread_mutex_unlock(&s->mu);
        s->ev.on_final(s->ev.user, text, -1.0f);
        pthread_mutex_lock(&s->mu);
        free(text);
    } else {
        stt_fail(s, &e);
    }
    stt_pump(s);
    pthread_mutex_unlock(&s->mu);
}

static const oai_call_ops stt_ops = {stt_body, stt_end};

/* ---------------------------------------------------------------- vtable */

/* The code feed and finish return once the stream is over. mu held. */
static int stt_over(vx_stream *s, vx_error *err) {
    if (s->canceled) {
        oai_seterr(err, VX_ECANCELED, 0, 0, STT_NAME ": the stream was cancelled");
        return VX_ECANCELED;
    }
    oai_seterr(err, s->end_code, 0, 0, STT_NAME ": the stream has failed");
    return s->end_code;
}

static int stt_feed(vx_stream *s, const int16_t *pcm, size_t frames, vx_error *err) {
    int rc = VX_OK;

    pthread_mutex_lock(&s->mu);
    if (s->ended || s->canceled) rc = stt_over(s, err);
    pthread_mutex_unlock(&s->mu);
    if (rc != VX_OK) return rc;
    if (s->too_long || frames > s->max_frames - s->n) {
        s->too_long = 1;
        oai_seterr(err, VX_EINVAL, 0, 0, STT_NAME ": the utterance is longer than max_seconds (%ld s)",
                   s->in->max_seconds);
        return VX_EINVAL;
    }
    if (s->n + frames > s->cap) {
        size_t cap = s->cap ? s->cap : (size_t)s->rate; /* a second */
        int16_t *p;
        while (cap < s->n + frames) cap *= 2;
        if (cap > s->max_frames) cap = s->max_frames;
        if (!(p = realloc(s->pcm, cap * sizeof(*p)))) {
            oai_seterr(err, VX_ENOMEM, 1, 0, STT_NAME ": out of memory buffering audio");
            return VX_ENOMEM;
        }
        s->pcm = p;
        s->cap = cap;
    }
    memcpy(s->pcm + s->n, pcm, frames * sizeof(*pcm));
    s->n += frames;
    return VX_OK;
}

/* Fails with VX_ECANCELED or the stream's failure once it is over,
 * VX_EINVAL after an utterance that was too long, VX_ENOMEM. The final
 * itself comes as an event. */
static int stt_finish(vx_stream *s, vx_error *err) {
    stt_utt *u;
    int rc = VX_OK;

    pthread_mutex_lock(&s->mu);
    if (s->ended || s->canceled) rc = stt_over(s, err);
    pthread_mutex_unlock(&s->mu);
    if (rc != VX_OK) return rc;
    if (s->too_long) {
        oai_seterr(err, VX_EINVAL, 0, 0, STT_NAME ": the utterance is longer than max_seconds (%ld s)",
                   s->in->max_seconds);
        return VX_EINVAL;
    }
    if (!(u = stt_wav(s->pcm, s->n, s->rate))) {
        oai_seterr(err, VX_ENOMEM, 1, 0, STT_NAME ": out of memory building the WAV");
        return VX_ENOMEM;
    }
    s->n = 0;
    pthread_mutex_lock(&s->mu);
    if (s->tail) s->tail->next = u;
    else s->head = u;
    s->tail = u;
    if (!s->busy) {
        s->busy = 1;
        stt_pump(s);
    }
    pthread_mutex_unlock(&s->mu);
    return VX_OK;
}

static void stt_cancel(vx_stream *s) {
    pthread_mutex_lock(&s->mu);
    if (!s->ended && !s->canceled && !s->closing) {
        s->canceled = 1;
        if (s->cur) {
            oai_call_cancel(s->cur); /* its end delivers the error */
        } else if (!s->busy) {
            s->busy = 1;
            stt_pump(s);
        } /* else the thread delivering now sees canceled next */
    }
    pthread_mutex_unlock(&s->mu);
}

static void stt_close(vx_stream *s) {
    oai_call *k;

    pthread_mutex_lock(&s->mu);
    s->closing = 1;
    k = s->cur;
    s->cur = NULL;
    stt_drop_queue(s);
    pthread_mutex_unlock(&s->mu);
    oai_call_close(k); /* waits until no callback of it can run */
    pthread_mutex_lock(&s->mu);
    while (s->busy) pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->pcm);
    free(s->body);
    free(s);
}

/* Mono s16le at 8-48 kHz (the WAV says the rate; the servers resample);
 * anything else is VX_ENOTSUP. VX_EINVAL without callbacks, VX_ENOMEM. */
static int stt_open(void *inst, const vx_audio_format *fmt, const vx_stt_events *ev,
                    vx_stream **out, vx_error *err) {
    stt_inst *in = inst;
    vx_stt_events e = {0};
    vx_stream *s;

    *out = NULL;
    if (ev) memcpy(&e, ev, ev->struct_size < sizeof(e) ? ev->struct_size : sizeof(e));
    if (!fmt || !e.on_final || !e.on_error) {
        oai_seterr(err, VX_EINVAL, 0, 0, STT_NAME ": open needs a format, on_final and on_error");
        return VX_EINVAL;
    }
    if (fmt->channels != 1 || fmt->encoding != VX_PCM_S16LE || fmt->sample_rate < 8000 ||
        fmt->sample_rate > 48000) {
        oai_seterr(err, VX_ENOTSUP, 0, 0, STT_NAME ": needs mono s16le at 8-48 kHz, got %u ch at %u Hz",
                   fmt->channels, fmt->sample_rate);
        return VX_ENOTSUP;
    }
    if (!(s = calloc(1, sizeof(*s)))) goto oom;
    if (pthread_mutex_init(&s->mu, NULL) != 0) {
        free(s);
        goto oom;
    }
    if (pthread_cond_init(&s->cv, NULL) != 0) {
        pthread_mutex_destroy(&s->mu);
        free(s);
        goto oom;
    }
    s->in = in;
    s->ev = e;
    s->rate = fmt->sample_rate;
    s->max_frames = (size_t)in->max_seconds * fmt->sample_rate;
    *out = s;
    return VX_OK;
oom:
    oai_seterr(err, VX_ENOMEM, 1, 0, STT_NAME ": out of memory opening a stream");
    return VX_ENOMEM;
}

static int stt_input_format(void *inst, vx_audio_format *out) {
    out->sample_rate = STT_RATE;
    out->channels = 1;
    out->encoding = VX_PCM_S16LE;
    return VX_OK;
}

static const vx_stt_vtable stt_vtable = {
    .struct_size = sizeof(vx_stt_vtable),
    .open = stt_open,
    .feed = stt_feed,
    .finish = stt_finish,
    .cancel = stt_cancel,
    .close = stt_close,
    .input_format = stt_input_format,
};

/* ---------------------------------------------------------------- lifecycle */

static void stt_shutdown(void *inst) {
    stt_inst *in = inst;

    if (!in) return;
    oai_client_free(in->client);
    oai_conf_free(&in->cf);
    free(in->language);
    free(in->prompt);
    free(in);
}

/* Fails with VX_EINVAL naming a key whose value does not parse (the host
 * validated them, so only a direct caller gets there), VX_ENOMEM. */
static int stt_init(const vx_host_api *host, vx_host *h, const vx_config *cfg, void **inst,
                    vx_error *err) {
    stt_inst *in = calloc(1, sizeof(*in));
    char desc[512];
    int rc;

    if (!in) {
        oai_seterr(err, VX_ENOMEM, 0, 0, STT_NAME ": out of memory at init");
        return VX_ENOMEM;
    }
    in->api = host;
    in->h = h;
    if ((rc = oai_conf_load(&in->cf, STT_NAME, host, h, cfg, stt_config, err)) != VX_OK) {
        free(in);
        return rc;
    }
    if (oai_cfg_long(host, h, "max_seconds", &in->max_seconds) != 0 ||
        in->max_seconds < 1 || in->max_seconds > 3600) {
        oai_seterr(err, VX_EINVAL, 0, 0, STT_NAME ": bad value for max_seconds: '%s'",
                   oai_cfg(cfg, stt_config, "max_seconds"));
        stt_shutdown(in);
        return VX_EINVAL;
    }
    in->language = strdup(oai_cfg(cfg, stt_config, "language"));
    in->prompt = strdup(oai_cfg(cfg, stt_config, "prompt"));
    if (!in->language || !in->prompt) {
        oai_seterr(err, VX_ENOMEM, 0, 0, STT_NAME ": out of memory at init");
        stt_shutdown(in);
        return VX_ENOMEM;
    }
    if ((rc = oai_client_new(host, h, &in->cf, &in->client, err)) != VX_OK) {
        stt_shutdown(in);
        return rc;
    }
    oai_conf_describe(&in->cf, desc, sizeof(desc));
    host->log(h, VX_LOG_INFO, "%s", desc);
    *inst = in;
    return VX_OK;
}

static int stt_health(void *inst, char *buf, size_t len) {
    return oai_client_health(((stt_inst *)inst)->client, buf, len);
}

static const vx_plugin_info stt_info = {
    .magic = VX_PLUGIN_MAGIC,
    .struct_size = sizeof(vx_plugin_info),
    .abi_major = VX_ABI_MAJOR,
    .abi_minor = VX_ABI_MINOR,
    .kinds = VX_KIND_STT,
    .name = STT_NAME,
    .version = STT_VERSION,
    .description = "utterance transcription by an OpenAI-compatible server "
                   "(OpenAI, speaches, whisper.cpp, vLLM)",
    .caps = VX_CAP_MULTILINGUAL | VX_CAP_NETWORK,
    .config = stt_config,
    .init = stt_init,
    .shutdown = stt_shutdown,
    .stt = &stt_vtable,
    .health = stt_health,
};

VX_EXPORT const vx_plugin_info *vx_plugin_entry(const vx_host_api *host) {
    /* The settings are read with the typed config getters (1.6). */
    if (!oai_host_ok(host)) {
        if (host && host->log)
            host->log(NULL, VX_LOG_ERROR, STT_NAME " needs a host of plugin ABI 1.6 or newer");
        return NULL;
    }
    return &stt_info;
}
