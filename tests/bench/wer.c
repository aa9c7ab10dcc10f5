/*
 * Benchmark (prints figures, never fails on them): word error rate of the
 * stt_pocketsphinx provider on flite speech, per voice, for the first
 * utterance of a fresh decoder and for later utterances of a decoder that
 * has already heard speech.
 *
 *   tests/bench/wer [-v VOICES] [-q] [KEY=VALUE ...]
 *
 * VOICES is a comma-separated list of flite voices (default "kal,slt": the
 * 8 kHz default voice, brought to the decoder's rate by the host's
 * resampler, and a 16 kHz one). KEY=VALUE pairs override the plugin's
 * settings (e.g. extra_args='-lw 8', cmn_restart=0), so a default can be
 * compared with a candidate. -q prints only the figures, not each miss.
 *
 * The corpus mixes ELIZA-style conversation with numbers and names, written
 * as the words flite says. Each sentence is fed in 10 ms blocks, as fast as
 * the calls return, then 300 ms of silence and finish, as a session does.
 * "first": every sentence on a decoder of its own, just created. "later":
 * one decoder hears the last sentence, then every sentence in order.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <voxray/plugin.h>

#include "pipeline/resample.h"
#include "plugin_harness.h"

#ifndef PS_SO
#error "PS_SO must name the built stt_pocketsphinx.so"
#endif

#define BLOCK 160 /* 10 ms at 16 kHz */
#define TAIL_MS 300
#define MAX_WORDS 64
#define MAX_OVERRIDES 16

static const char *const corpus[] = {
    /* conversation */
    "hello how are you",
    "i am feeling sad today",
    "my mother does not understand me",
    "i would like a cup of coffee",
    "please tell me a story",
    "what time is it",
    "the weather is nice today",
    "i think i need a vacation",
    "can you help me with my homework",
    "i am afraid of the dark",
    "why do you ask",
    "my father was a teacher",
    "i dream about flying",
    "i want to go home",
    "do you remember me",
    "thank you very much",
    "i feel happy when i sing",
    /* numbers and names */
    "my name is john smith",
    "call mary at seven thirty",
    "my phone number is five five five one two three four",
    "i was born in nineteen eighty four",
    "the meeting is on monday at ten",
    "send it to peter in london",
    "i have two brothers and three sisters",
    "the total is forty two dollars",
    "david lives in new york",
    "we need eight tickets for friday",
    "my address is twelve main street",
    "robert is sixty years old",
    "book a table for four people",
    "sarah called me yesterday",
    "the train leaves at nine fifteen",
};
#define N_CORPUS (sizeof(corpus) / sizeof(corpus[0]))

typedef struct speech {
    int16_t *pcm;
    size_t n;
} speech;

static const vx_plugin_info *ps;
static const char *over_key[MAX_OVERRIDES], *over_val[MAX_OVERRIDES];
static size_t n_over;
static int quiet;
static uint32_t rate = 16000;

/* ---------------------------------------------------------------- speech */

/* flite's voice saying text, at `rate` (resampled as the host would when
 * the voice speaks at another rate). 0 on success. */
static int make_speech(const char *dir, const char *voice, const char *text, speech *out) {
    char path[256];
    int16_t *pcm = NULL;
    size_t n = 0;
    uint32_t vr = 0;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/s.wav", dir);
    if (ph_flite(voice, text, path) != 0) return -1;
    /* The voices speak at 8 or 16 kHz. */
    if (ph_wav_read(path, 16000, &pcm, &n) == 0) vr = 16000;
    else if (ph_wav_read(path, 8000, &pcm, &n) == 0) vr = 8000;
    unlink(path);
    if (!vr) return -1;
    if (vr == rate) {
        out->pcm = pcm;
        out->n = n;
        return 0;
    }
    {
        resampler *rs = resampler_new((int)vr, (int)rate, 5);
        size_t cap, got;
        if (rs) {
            cap = resampler_out_capacity(rs, n) + resampler_out_capacity(rs, 0);
            if ((out->pcm = malloc(cap * sizeof(int16_t)))) {
                got = resampler_process(rs, pcm, n, out->pcm, cap);
                got += resampler_flush(rs, out->pcm + got, cap - got);
                out->n = got;
                rc = 0;
            }
            resampler_free(rs);
        }
    }
    free(pcm);
    return rc;
}

/* ---------------------------------------------------------------- plugin */

/* The stream's final or error came. */
static int ended(const ph_seen *d, size_t n) {
    return d->n_finals + (size_t)d->errors >= n;
}

typedef struct inst {
    vx_host h;
    void *in;
} inst;

static int cfg_start(vx_host *h, ...) {
    va_list ap;
    int rc;

    va_start(ap, h);
    rc = ph_host_vconfig(h, ps, "pocketsphinx", ap);
    va_end(ap);
    return rc;
}

static int inst_new(inst *x) {
    vx_error err = {0};

    if (cfg_start(&x->h, "pool_size", "1", NULL) != 0) return -1;
    for (size_t i = 0; i < n_over; i++)
        if (ph_host_set(&x->h, over_key[i], over_val[i]) != 0) {
            fprintf(stderr, "wer: stt_pocketsphinx has no setting '%s'\n", over_key[i]);
            ph_host_release(&x->h);
            return -1;
        }
    if (ps->init(&ph_api, &x->h, &x->h.cfg, &x->in, &err) != VX_OK) {
        fprintf(stderr, "wer: init failed: %s\n", err.msg);
        ph_host_release(&x->h);
        return -1;
    }
    return 0;
}

static void inst_free(inst *x) {
    ps->shutdown(x->in);
    ph_host_release(&x->h);
}

/* The final for one utterance of sp on x into out (size cap); 0 or -1. */
static int hear(inst *x, const speech *sp, char *out, size_t cap, double *decode_s) {
    static const int16_t zeros[BLOCK];
    vx_audio_format fmt = {rate, 1, VX_PCM_S16LE};
    ph_rec *r = ph_rec_new();
    vx_stt_events ev;
    vx_stream *s = NULL;
    vx_error err = {0};
    ph_seen *d;
    uint64_t t0;
    size_t block = rate / 100;
    int rc = -1;

    if (!r || !(d = malloc(sizeof(*d)))) {
        ph_rec_free(r);
        return -1;
    }
    ev = ph_stt_events(r);
    if (ps->stt->open(x->in, &fmt, &ev, &s, &err) != VX_OK) {
        fprintf(stderr, "wer: open failed: %s\n", err.msg);
        goto out;
    }
    t0 = ph_now_ns();
    for (size_t i = 0; i < sp->n; i += block)
        if (ps->stt->feed(s, sp->pcm + i, sp->n - i < block ? sp->n - i : block, &err) != VX_OK)
            goto out;
    for (unsigned ms = 0; ms < TAIL_MS; ms += 10)
        if (ps->stt->feed(s, zeros, block <= BLOCK ? block : BLOCK, &err) != VX_OK) goto out;
    if (ps->stt->finish(s, &err) != VX_OK) goto out;
    if (!ph_rec_wait(r, ended, 1)) goto out;
    ph_rec_snap(r, d);
    *decode_s += (double)(d->final_ns - t0) / 1e9;
    if (d->errors || d->n_finals < 1) goto out;
    snprintf(out, cap, "%s", d->finals[0]);
    rc = 0;
out:
    if (s) ps->stt->close(s);
    ph_rec_free(r);
    free(d);
    return rc;
}

/* ---------------------------------------------------------------- scoring */

static size_t split(char *s, char **w) {
    size_t n = 0;
    char *save = NULL;

    for (char *p = strtok_r(s, " ", &save); p && n < MAX_WORDS; p = strtok_r(NULL, " ", &save))
        w[n++] = p;
    return n;
}

/* Word-level edit distance between ref and hyp; *n_ref gets ref's words. */
static size_t edits(const char *ref, const char *hyp, size_t *n_ref) {
    char a[1024], b[1024], *rw[MAX_WORDS], *hw[MAX_WORDS];
    size_t d[MAX_WORDS + 1][MAX_WORDS + 1], nr, nh;

    snprintf(a, sizeof(a), "%s", ref);
    snprintf(b, sizeof(b), "%s", hyp);
    nr = split(a, rw);
    nh = split(b, hw);
    for (size_t i = 0; i <= nr; i++) d[i][0] = i;
    for (size_t j = 0; j <= nh; j++) d[0][j] = j;
    for (size_t i = 1; i <= nr; i++)
        for (size_t j = 1; j <= nh; j++) {
            size_t sub = d[i - 1][j - 1] + (strcmp(rw[i - 1], hw[j - 1]) != 0);
            size_t del = d[i - 1][j] + 1, ins = d[i][j - 1] + 1;
            d[i][j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
    *n_ref = nr;
    return d[nr][nh];
}

typedef struct score {
    size_t errors, words, sentences, right;
    double audio_s, decode_s;
} score;

static void tally(score *sc, const char *voice, const char *pass, size_t i, const char *hyp,
                  const speech *sp) {
    size_t nr, e = edits(corpus[i], hyp, &nr);

    sc->errors += e;
    sc->words += nr;
    sc->sentences++;
    sc->right += e == 0;
    sc->audio_s += (double)sp->n / rate + TAIL_MS / 1000.0;
    if (e && !quiet) printf("  %s %s: '%s' heard as '%s'\n", voice, pass, corpus[i], hyp);
}

static void report(const char *voice, const char *pass, const score *sc) {
    printf("%-4s %-5s WER %5.1f%% (%zu errors / %zu words), sentences right %zu/%zu, "
           "real-time factor %.2f\n",
           voice, pass, sc->words ? 100.0 * (double)sc->errors / (double)sc->words : 0.0,
           sc->errors, sc->words, sc->right, sc->sentences,
           sc->audio_s > 0 ? sc->decode_s / sc->audio_s : 0.0);
}

/* ---------------------------------------------------------------- main */

static int run_voice(const char *dir, const char *voice, score *first, score *later) {
    speech sp[N_CORPUS] = {{0}};
    char hyp[1024];
    inst x;
    int rc = -1;

    for (size_t i = 0; i < N_CORPUS; i++)
        if (make_speech(dir, voice, corpus[i], &sp[i]) != 0) {
            fprintf(stderr, "wer: flite -voice %s cannot say '%s'\n", voice, corpus[i]);
            goto out;
        }
    for (size_t i = 0; i < N_CORPUS; i++) {
        if (inst_new(&x) != 0) goto out;
        if (hear(&x, &sp[i], hyp, sizeof(hyp), &first->decode_s) != 0) hyp[0] = '\0';
        inst_free(&x);
        tally(first, voice, "first", i, hyp, &sp[i]);
    }
    if (inst_new(&x) != 0) goto out;
    {
        double ignored = 0;
        if (hear(&x, &sp[N_CORPUS - 1], hyp, sizeof(hyp), &ignored) != 0) hyp[0] = '\0';
    }
    for (size_t i = 0; i < N_CORPUS; i++) {
        if (hear(&x, &sp[i], hyp, sizeof(hyp), &later->decode_s) != 0) hyp[0] = '\0';
        tally(later, voice, "later", i, hyp, &sp[i]);
    }
    inst_free(&x);
    rc = 0;
out:
    for (size_t i = 0; i < N_CORPUS; i++) free(sp[i].pcm);
    return rc;
}

int main(int argc, char **argv) {
    char voices[256] = "kal,slt", dir[] = "/tmp/vx-wer-XXXXXX";
    score all_first = {0}, all_later = {0};
    void *dl;
    int opt, rc = 0;

    while ((opt = getopt(argc, argv, "v:q")) != -1) {
        if (opt == 'v') snprintf(voices, sizeof(voices), "%s", optarg);
        else if (opt == 'q') quiet = 1;
        else {
            fprintf(stderr, "usage: %s [-v VOICES] [-q] [KEY=VALUE ...]\n", argv[0]);
            return 2;
        }
    }
    for (int i = optind; i < argc; i++) {
        char *eq = strchr(argv[i], '=');
        if (!eq || n_over == MAX_OVERRIDES) {
            fprintf(stderr, "wer: expected KEY=VALUE, got '%s'\n", argv[i]);
            return 2;
        }
        *eq = '\0';
        over_key[n_over] = argv[i];
        over_val[n_over++] = eq + 1;
        if (strcmp(argv[i], "samplerate") == 0) rate = (uint32_t)atoi(eq + 1);
    }
    if (rate < 8000 || rate > 48000) {
        fprintf(stderr, "wer: bad samplerate\n");
        return 2;
    }
    setvbuf(stdout, NULL, _IOLBF, 0);
    ph_log_echo = 0;
    ph_log_keep = VX_LOG_WARN;
    ph_wait_ms = 120000;
    if (!(ps = ph_plugin_load(PS_SO, &dl))) return 1;
    if (!mkdtemp(dir)) {
        perror("wer: mkdtemp");
        return 1;
    }
    printf("%zu sentences per voice; settings:", N_CORPUS);
    for (size_t i = 0; i < n_over; i++) printf(" %s=%s", over_key[i], over_val[i]);
    printf("%s\n", n_over ? "" : " the defaults");
    for (char *vs = NULL, *v = strtok_r(voices, ",", &vs); v; v = strtok_r(NULL, ",", &vs)) {
        score first = {0}, later = {0};
        if (run_voice(dir, v, &first, &later) != 0) {
            rc = 1;
            continue;
        }
        report(v, "first", &first);
        report(v, "later", &later);
        all_first.errors += first.errors;
        all_first.words += first.words;
        all_later.errors += later.errors;
        all_later.words += later.words;
    }
    if (all_first.words)
        printf("all  WER first %.1f%%, later %.1f%%\n",
               100.0 * (double)all_first.errors / (double)all_first.words,
               100.0 * (double)all_later.errors / (double)all_later.words);
    rmdir(dir);
    ph_plugin_unload(dl);
    return rc;
}
