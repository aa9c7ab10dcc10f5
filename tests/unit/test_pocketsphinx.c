/*
 * The stt_pocketsphinx provider plugin, tested through its built .so as the
 * host loads it (dlopen, vx_plugin_entry, init, the STT vtable) with the
 * real en-us model of the pocketsphinx-en-us package.
 *
 * Test speech is made once per run by flite (voice slt, 16 kHz) in a
 * temporary directory and read back from its WAV files; the first-utterance
 * tests also use flite's default voice kal (8 kHz), brought to 16 kHz by the
 * host's resampler as a session would. Audio is fed the
 * way the host feeds it: 10 ms blocks, as fast as the calls return.
 * Events arrive on the plugin's threads and are recorded under a mutex;
 * assertions run on the main thread only, and no assertion depends on
 * speed (time figures are printed as TAP comments).
 *
 * PS_TEST_FILTER=pattern runs a subset (e.g. under valgrind);
 * PS_TEST_VERBOSE=1 prints what the plugin logs, at debug level;
 * PS_TEST_CMN_RESTART=0 shows the first-utterance test failing without the
 * cepstral mean restart.
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <voxray/plugin.h>

#include "pipeline/resample.h"
#include "plugin_harness.h"

#ifndef PS_SO
#error "PS_SO must name the built stt_pocketsphinx.so"
#endif

#define WAIT_MS 120000 /* generous: valgrind runs the decoder 50x slower */
#define RATE 16000
#define BLOCK 160           /* 10 ms */
#define TAIL_MS 300         /* silence after the speech */
#define MODEL "/usr/share/pocketsphinx/model/en-us"

typedef ph_seen seen;
typedef ph_rec rec;
typedef ph_fixture fixture;

/* A stream ended: its final or an error (n of them together). */
static int has_ended(const seen *d, size_t n) {
    return d->n_finals + (size_t)d->errors >= n;
}

/* ---------------------------------------------------------------- speech */

/* The five sentences the design notes say pocketsphinx hears perfectly in
 * flite's slt voice, as the transcript must read. */
static const char *const sentences[] = {
    "hello how are you", "what time is it", "the weather is nice today",
    "please tell me a story", "i would like a cup of coffee",
};
#define N_SENTENCES (sizeof(sentences) / sizeof(sentences[0]))

typedef struct speech {
    int16_t *pcm;
    size_t n;
} speech;

static char tmpdir[64];
static speech audio[N_SENTENCES];

static int speech_setup(void **state) {
    char path[128];

    snprintf(tmpdir, sizeof(tmpdir), "%s/vx-ps-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(tmpdir)) return -1;
    for (size_t i = 0; i < N_SENTENCES; i++) {
        snprintf(path, sizeof(path), "%s/%zu.wav", tmpdir, i);
        if (ph_flite("slt", sentences[i], path) != 0 ||
            ph_wav_read(path, RATE, &audio[i].pcm, &audio[i].n) != 0) {
            fprintf(stderr, "# cannot make speech with flite: %s\n", sentences[i]);
            return -1;
        }
    }
    return 0;
}
static int speech_teardown(void **state) {
    char path[128];

    for (size_t i = 0; i < N_SENTENCES; i++) {
        free(audio[i].pcm);
        snprintf(path, sizeof(path), "%s/%zu.wav", tmpdir, i);
        unlink(path);
    }
    rmdir(tmpdir);
    return 0;
}

/* ---------------------------------------------------------------- fixture */

static void *ps_dl;
static const vx_plugin_info *ps;

static int fx_setup(void **state) {
    return (*state = ph_fx_new(ps)) ? 0 : -1;
}

static int fx_teardown(void **state) {
    ph_fx_free(*state);
    return 0;
}

/* Init an instance the way the host does (every schema key, the given value
 * or the default), pairs of key, value ending with NULL. Returns init's
 * code; the instance is f->inst[f->n_inst - 1]. */
static int fx_init(fixture *f, vx_error *err, ...) {
    va_list ap;
    int rc;

    va_start(ap, err);
    rc = ph_fx_vinit(f, "pocketsphinx", err, ap);
    va_end(ap);
    return rc;
}

/* An instance that must init; returns its index. Decoders are expensive,
 * so tests ask for one unless they need more. */
static size_t fx_inst(fixture *f, ...) {
    va_list ap;
    size_t in;

    va_start(ap, f);
    in = ph_fx_vinst(f, "pocketsphinx", ap);
    va_end(ap);
    return in;
}

static rec *fx_rec(fixture *f) {
    return ph_fx_rec(f);
}

/* Close a tracked stream now and mark its recorder (when given) closed. */
static void fx_close(fixture *f, vx_stream *s, rec *r) {
    ph_fx_close(f, s, r);
}

/* Open on instance `in`; a stream the call leaves in *s (also on failure,
 * see the ABI) is tracked for teardown. */
static int stt_open(fixture *f, size_t in, rec *r, vx_stream **s, vx_error *err) {
    vx_audio_format fmt = {RATE, 1, VX_PCM_S16LE};
    vx_stt_events ev = ph_stt_events(r);
    int rc;

    *s = NULL;
    rc = ps->stt->open(f->inst[in], &fmt, &ev, s, err);
    if (*s) ph_fx_track(f, VX_KIND_STT, *s);
    return rc;
}

/* Feed pcm in 10 ms blocks, then TAIL_MS of silence. */
static void feed_speech(vx_stream *s, const int16_t *pcm, size_t n) {
    static const int16_t zeros[BLOCK];
    vx_error err = {0};

    for (size_t i = 0; i < n; i += BLOCK)
        assert_int_equal(ps->stt->feed(s, pcm + i, n - i < BLOCK ? n - i : BLOCK, &err), VX_OK);
    for (unsigned ms = 0; ms < TAIL_MS; ms += 10)
        assert_int_equal(ps->stt->feed(s, zeros, BLOCK, &err), VX_OK);
}

/* One whole utterance: speech, silence, finish. */
static void say(vx_stream *s, size_t sentence) {
    vx_error err = {0};

    feed_speech(s, audio[sentence].pcm, audio[sentence].n);
    assert_int_equal(ps->stt->finish(s, &err), VX_OK);
}

/* flite's kal voice (8 kHz) saying text, resampled to RATE as the host
 * does; 0 on success. */
static int kal_speech(const char *text, speech *out) {
    char path[128];
    int16_t *pcm8 = NULL;
    size_t n8 = 0, cap, n;
    resampler *rs;
    int rc = -1;

    snprintf(path, sizeof(path), "%s/kal.wav", tmpdir);
    if (ph_flite("kal", text, path) != 0 || ph_wav_read(path, 8000, &pcm8, &n8) != 0) goto out;
    if (!(rs = resampler_new(8000, RATE, 5))) goto out;
    cap = resampler_out_capacity(rs, n8);
    if ((out->pcm = malloc((cap + resampler_out_capacity(rs, 0)) * sizeof(int16_t)))) {
        n = resampler_process(rs, pcm8, n8, out->pcm, cap);
        n += resampler_flush(rs, out->pcm + n, resampler_out_capacity(rs, 0));
        out->n = n;
        rc = 0;
    }
    resampler_free(rs);
out:
    unlink(path);
    free(pcm8);
    return rc;
}

/* Feed a whole utterance of sp to s and return its final (strdup'ed). */
static char *hear(fixture *f, size_t in, const speech *sp) {
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;
    char *text;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    feed_speech(s, sp->pcm, sp->n);
    assert_int_equal(ps->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, has_ended, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 0);
    text = strdup(d.finals[0]);
    assert_non_null(text);
    fx_close(f, s, r);
    return text;
}

/* ---------------------------------------------------------------- descriptor */

static void test_descriptor_is_a_streaming_stt_with_partials(void **state) {
    assert_int_equal(ps->magic, VX_PLUGIN_MAGIC);
    assert_string_equal(ps->name, "stt_pocketsphinx");
    assert_int_equal(ps->kinds, VX_KIND_STT);
    assert_true(ps->caps & VX_CAP_STREAMING_INPUT);
    assert_true(ps->caps & VX_CAP_PARTIALS);
    assert_false(ps->caps & VX_CAP_NETWORK);
    assert_non_null(ps->stt);
    assert_non_null(ps->stt->input_format);
    assert_null(ps->llm);
    assert_null(ps->tts);
}

static const char *schema_default(const char *key) {
    for (const vx_config_key *k = ps->config; k->key; k++)
        if (strcmp(k->key, key) == 0) return k->def;
    return NULL;
}

static void test_schema_defaults_point_at_the_debian_en_us_model(void **state) {
    assert_string_equal(schema_default("hmm"), MODEL "/en-us");
    assert_string_equal(schema_default("lm"), MODEL "/en-us.lm.bin");
    assert_string_equal(schema_default("dict"), MODEL "/cmudict-en-us.dict");
    assert_string_equal(schema_default("jsgf"), "");
    assert_string_equal(schema_default("pool_size"), "2");
    assert_string_equal(schema_default("pool_max"), "4");
    assert_string_equal(schema_default("pool_wait"), "2s");
    assert_string_equal(schema_default("partial_interval"), "100ms");
    assert_string_equal(schema_default("samplerate"), "16000");
    assert_string_equal(schema_default("extra_args"), "");
}

/* ---------------------------------------------------------------- init */

static void test_input_format_is_the_configured_samplerate(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    vx_audio_format fmt = {0};

    assert_int_equal(ps->stt->input_format(f->inst[in], &fmt), VX_OK);
    assert_int_equal(fmt.sample_rate, 16000);
    assert_int_equal(fmt.channels, 1);
    assert_int_equal(fmt.encoding, VX_PCM_S16LE);
}

static void test_init_fails_naming_a_missing_acoustic_model(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_init(f, &err, "hmm", "/nonexistent/model/en-us", NULL), VX_EINVAL);
    assert_non_null(strstr(err.msg, "/nonexistent/model/en-us"));
    assert_non_null(strstr(err.msg, "pocketsphinx-en-us"));
    assert_false(err.retryable);
}

static void test_init_fails_naming_a_missing_language_model(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_init(f, &err, "lm", "/nonexistent/en-us.lm.bin", NULL), VX_EINVAL);
    assert_non_null(strstr(err.msg, "/nonexistent/en-us.lm.bin"));
    assert_non_null(strstr(err.msg, "pocketsphinx-en-us"));
}

static void test_init_fails_quoting_an_unknown_extra_arg(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_not_equal(fx_init(f, &err, "pool_size", "1", "extra_args", "-nosuchoption 1",
                                 NULL),
                         VX_OK);
    assert_non_null(strstr(err.msg, "-nosuchoption"));
}

static void test_health_reports_busy_decoders(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    char buf[128];

    assert_int_equal(ps->health(f->inst[in], buf, sizeof(buf)), VX_OK);
    assert_non_null(strstr(buf, "0 of 1 decoders busy"));
    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    assert_int_equal(ps->health(f->inst[in], buf, sizeof(buf)), VX_OK);
    assert_non_null(strstr(buf, "1 of 1 decoders busy"));
    assert_true(ph_metric_value(&f->hosts[in], "stt_pocketsphinx_decoders_busy") == 1);
    fx_close(f, s, r);
    assert_true(ph_metric_value(&f->hosts[in], "stt_pocketsphinx_decoders_busy") == 0);
}

/* ---------------------------------------------------------------- recognition */

static void test_open_refuses_a_rate_other_than_samplerate(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_audio_format fmt = {8000, 1, VX_PCM_S16LE};
    vx_stt_events ev = ph_stt_events(r);
    vx_error err = {0};
    vx_stream *s = NULL;

    assert_int_equal(ps->stt->open(f->inst[in], &fmt, &ev, &s, &err), VX_ENOTSUP);
    assert_null(s);
    assert_non_null(strstr(err.msg, "16000"));
}

static void test_final_is_each_flite_sentence_exactly(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    double audio_s = 0, wall_s = 0;
    int wrong = 0;

    for (size_t i = 0; i < N_SENTENCES; i++) {
        rec *r = fx_rec(f);
        vx_error err = {0};
        vx_stream *s;
        uint64_t t0;
        seen d;

        assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
        t0 = ph_now_ns();
        say(s, i);
        assert_true(ph_rec_wait(r, has_ended, 1));
        ph_rec_snap(r, &d);
        assert_int_equal(d.errors, 0);
        audio_s += (double)(audio[i].n + RATE * TAIL_MS / 1000) / RATE;
        wall_s += (double)(d.final_ns - t0) / 1e9;
        if (strcmp(d.finals[0], sentences[i]) != 0) {
            fprintf(stderr, "# expected '%s', heard '%s'\n", sentences[i], d.finals[0]);
            wrong++;
        }
        fx_close(f, s, r);
    }
    fprintf(stderr, "# %zu sentences, %.2f s of audio decoded in %.2f s: real-time factor %.2f\n",
            N_SENTENCES, audio_s, wall_s, wall_s / audio_s);
    assert_int_equal(wrong, 0);
}

static void test_final_confidence_is_a_posterior_between_0_and_1(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 0);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &d);
    assert_true(d.confidence[0] > 0);
    assert_true(d.confidence[0] <= 1);
}

static void test_extra_args_reach_the_decoder(void **state) {
    fixture *f = *state;
    /* Without the lattice pass there is no posterior: confidence unknown. */
    size_t in = fx_inst(f, "pool_size", "1", "extra_args", "-bestpath no", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 0);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &d);
    assert_string_equal(d.finals[0], sentences[0]);
    assert_true(d.confidence[0] < 0);
}

static void test_partials_arrive_before_the_final(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 4);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &d);
    assert_true(d.n_partials >= 1);
    for (size_t i = 0; i < d.n_partials; i++) {
        assert_true(d.partials[i][0] != '\0');
        assert_true(d.partial_at[i] < d.final_at[0]);
        if (i) assert_string_not_equal(d.partials[i], d.partials[i - 1]); /* only changes */
    }
    fprintf(stderr, "# %zu partials, last '%s', final '%s'\n", d.n_partials,
            d.partials[d.n_partials - 1], d.finals[0]);
}

static void test_partial_interval_zero_sends_no_partials(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", "partial_interval", "0", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 1);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &d);
    assert_int_equal(d.n_partials, 0);
    assert_string_equal(d.finals[0], sentences[1]);
}

/* A fresh decoder normalises its first utterance with the model's prior
 * cepstral mean, far from flite's 8 kHz voice: without the restart the
 * first "hello how are you" came out "hello are you". Each sentence goes
 * first to a fresh decoder of its own, then again to the same decoder. */
static void test_first_utterance_of_a_fresh_decoder_in_the_8khz_voice(void **state) {
    fixture *f = *state;
    static const char *const text[] = {"hello how are you", "the weather is nice today"};
    speech sp[2];

    for (size_t i = 0; i < 2; i++) assert_int_equal(kal_speech(text[i], &sp[i]), 0);
    for (size_t i = 0; i < 2; i++) {
        size_t in = fx_inst(f, "pool_size", "1", "cmn_restart", getenv("PS_TEST_CMN_RESTART") ? getenv("PS_TEST_CMN_RESTART") : "8", NULL);
        for (size_t round = 0; round < 2; round++) {
            char *heard = hear(f, in, &sp[i]);
            if (strcmp(heard, text[i]) != 0)
                fprintf(stderr, "# utterance %zu of a fresh decoder: expected '%s', heard '%s'\n",
                        round + 1, text[i], heard);
            assert_string_equal(heard, text[i]);
            free(heard);
        }
    }
    for (size_t i = 0; i < 2; i++) free(sp[i].pcm);
}

/* Once one decoder has heard the channel, a decoder that has not starts
 * from the cepstral mean it learned: the restart (counted in
 * stt_pocketsphinx_cmn_restarts_total) is paid by the first utterances of
 * the process, not by every fresh decoder of the pool. */
static void test_a_fresh_decoder_starts_from_the_mean_another_learned(void **state) {
    fixture *f = *state;
    static const char *const text[] = {"hello how are you", "the weather is nice today"};
    speech sp[2];
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *held;
    const char *restarts = "stt_pocketsphinx_cmn_restarts_total";

    for (size_t i = 0; i < 2; i++) assert_int_equal(kal_speech(text[i], &sp[i]), 0);
    size_t in = fx_inst(f, "pool_size", "2", "pool_max", "2", "cmn_restart", "8", NULL);
    vx_host *h = &f->hosts[in];

    /* The first decoder's first utterance is decoded again. */
    char *heard = hear(f, in, &sp[0]);
    assert_string_equal(heard, text[0]);
    free(heard);
    double after_first = ph_metric_value(h, restarts);
    fprintf(stderr, "# restarts in the first utterance: %.0f\n", after_first);
    assert_true(after_first >= 1);

    /* That decoder is busy: the next stream gets the other, which has never
     * heard anything, and hears its first sentence whole without one. */
    assert_int_equal(stt_open(f, in, r, &held, &err), VX_OK);
    heard = hear(f, in, &sp[1]);
    if (strcmp(heard, text[1]) != 0) fprintf(stderr, "# the second decoder heard '%s'\n", heard);
    assert_string_equal(heard, text[1]);
    free(heard);
    assert_true(ph_metric_value(h, restarts) == after_first);
    fx_close(f, held, r);
    for (size_t i = 0; i < 2; i++) free(sp[i].pcm);
}

/* The restart is a setting: 0 turns it off, and a bad value is refused. */
static void test_cmn_restart_settings_are_checked(void **state) {
    fixture *f = *state;
    vx_error err = {0};

    assert_int_equal(fx_init(f, &err, "cmn_restart", "-1", NULL), VX_EINVAL);
    assert_non_null(strstr(err.msg, "cmn_restart"));
    memset(&err, 0, sizeof(err));
    assert_int_equal(fx_init(f, &err, "cmn_restart_after", "soon", NULL), VX_EINVAL);
    assert_non_null(strstr(err.msg, "cmn_restart_after"));
    {
        size_t in = fx_inst(f, "pool_size", "1", "cmn_restart", "0", NULL);
        char *heard = hear(f, in, &audio[0]);
        assert_string_equal(heard, sentences[0]);
        free(heard);
    }
}

static void test_stream_recognizes_a_second_utterance_after_a_final(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 0);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    say(s, 3);
    assert_true(ph_rec_wait(r, ph_has_finals, 2));
    ph_rec_snap(r, &d);
    assert_string_equal(d.finals[0], sentences[0]);
    assert_string_equal(d.finals[1], sentences[3]);
    assert_int_equal(d.errors, 0);
}

static void test_audio_after_finish_belongs_to_the_next_utterance(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    /* The second utterance is fed before the first final can be out. */
    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 1);
    say(s, 2);
    assert_true(ph_rec_wait(r, ph_has_finals, 2));
    ph_rec_snap(r, &d);
    assert_string_equal(d.finals[0], sentences[1]);
    assert_string_equal(d.finals[1], sentences[2]);
}

static void test_finish_without_audio_gives_an_empty_final(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    assert_int_equal(ps->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &d);
    assert_string_equal(d.finals[0], "");
    assert_int_equal(d.n_partials, 0);
    assert_int_equal(d.errors, 0);
}

static void test_silence_gives_an_empty_final(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    feed_speech(s, NULL, 0);
    assert_int_equal(ps->stt->finish(s, &err), VX_OK);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &d);
    assert_string_equal(d.finals[0], "");
    assert_int_equal(d.errors, 0);
}

static void test_jsgf_grammar_replaces_the_language_model(void **state) {
    fixture *f = *state;
    static const char grammar[] =
        "#JSGF V1.0;\ngrammar test;\npublic <cmd> = what time is it | hello how are you;\n";
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    size_t in;
    seen d;
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/test.gram", tmpdir);
    ph_fx_remove_later(f, path); /* removed at teardown */
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, grammar, sizeof(grammar) - 1), (ssize_t)(sizeof(grammar) - 1));
    close(fd);
    /* No language model at all: the grammar must be what is used. */
    in = fx_inst(f, "pool_size", "1", "jsgf", path, "lm", "/nonexistent.lm.bin", NULL);
    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 1);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ph_rec_snap(r, &d);
    assert_string_equal(d.finals[0], sentences[1]);
}

/* ---------------------------------------------------------------- pool */

static void test_open_fails_unavailable_when_the_pool_stays_busy(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", "pool_max", "1", "pool_wait", "300ms", NULL);
    rec *r1 = fx_rec(f), *r2 = fx_rec(f);
    vx_error err = {0};
    vx_stream *s1, *s2;
    uint64_t t0;

    assert_int_equal(stt_open(f, in, r1, &s1, &err), VX_OK);
    t0 = ph_now_ns();
    assert_int_equal(stt_open(f, in, r2, &s2, &err), VX_EUNAVAIL);
    assert_true(ph_ms_since(t0) >= 290); /* it waited for pool_wait first */
    assert_int_equal(err.code, VX_EUNAVAIL);
    assert_true(err.retryable);
    assert_true(ph_metric_value(&f->hosts[in], "stt_pocketsphinx_pool_timeouts_total") == 1);
    if (s2) fx_close(f, s2, r2); /* published while waiting: the caller closes it */

    fx_close(f, s1, r1);
    memset(&err, 0, sizeof(err));
    assert_int_equal(stt_open(f, in, r2, &s2, &err), VX_OK);
}

typedef struct closer {
    vx_stream *s;
    unsigned delay_ms;
} closer;

static void *close_later(void *arg) {
    closer *c = arg;

    ph_sleep_ms(c->delay_ms);
    ps->stt->close(c->s);
    return NULL;
}

static void test_waiting_open_gets_the_decoder_a_closed_stream_returns(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", "pool_max", "1", "pool_wait", "60s", NULL);
    rec *r1 = fx_rec(f), *r2 = fx_rec(f);
    vx_error err = {0};
    vx_stream *s1, *s2;
    pthread_t t;
    closer c;

    assert_int_equal(stt_open(f, in, r1, &s1, &err), VX_OK);
    f->streams[--f->n_streams].s = NULL; /* the closer thread closes it */
    c = (closer){s1, 200};
    assert_int_equal(pthread_create(&t, NULL, close_later, &c), 0);
    assert_int_equal(stt_open(f, in, r2, &s2, &err), VX_OK);
    pthread_join(t, NULL);
    say(s2, 0);
    assert_true(ph_rec_wait(r2, ph_has_finals, 1));
    assert_string_equal(r2->d.finals[0], sentences[0]);
}

static void test_pool_grows_on_demand_up_to_pool_max(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", "pool_max", "2", "pool_wait", "100ms", NULL);
    rec *r[3] = {fx_rec(f), fx_rec(f), fx_rec(f)};
    vx_error err = {0};
    vx_stream *s[3];
    char buf[128];

    assert_int_equal(stt_open(f, in, r[0], &s[0], &err), VX_OK);
    assert_int_equal(stt_open(f, in, r[1], &s[1], &err), VX_OK);
    assert_int_equal(ps->health(f->inst[in], buf, sizeof(buf)), VX_OK);
    assert_non_null(strstr(buf, "2 of 2 decoders busy"));
    assert_int_equal(stt_open(f, in, r[2], &s[2], &err), VX_EUNAVAIL);
    /* The grown decoder recognizes like the first. */
    say(s[1], 2);
    assert_true(ph_rec_wait(r[1], ph_has_finals, 1));
    assert_string_equal(r[1]->d.finals[0], sentences[2]);
}

typedef struct opener {
    fixture *f;
    size_t in;
    rec *r;
    vx_stream *s; /* published by open while it waits */
    int rc;
    vx_error err;
} opener;

static void *open_thread(void *arg) {
    opener *o = arg;
    vx_audio_format fmt = {RATE, 1, VX_PCM_S16LE};
    vx_stt_events ev = ph_stt_events(o->r);

    o->rc = ps->stt->open(o->f->inst[o->in], &fmt, &ev, &o->s, &o->err);
    return NULL;
}

static void test_cancel_wakes_an_open_waiting_for_a_decoder(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", "pool_max", "1", "pool_wait", "60s", NULL);
    rec *r1 = fx_rec(f), *r2 = fx_rec(f);
    vx_error err = {0};
    vx_stream *s1, *waiting = NULL;
    opener o = {f, in, r2, NULL, 0, {0}};
    uint64_t t0 = ph_now_ns();
    pthread_t t;

    assert_int_equal(stt_open(f, in, r1, &s1, &err), VX_OK);
    assert_int_equal(pthread_create(&t, NULL, open_thread, &o), 0);
    /* The host reads the stream the blocked call published, and cancels it. */
    while (!(waiting = __atomic_load_n(&o.s, __ATOMIC_ACQUIRE)) && ph_ms_since(t0) < WAIT_MS)
        ph_sleep_ms(5);
    assert_non_null(waiting);
    ps->stt->cancel(waiting);
    pthread_join(t, NULL);
    assert_int_equal(o.rc, VX_ECANCELED);
    assert_true(o.s == waiting);
    assert_true(ph_ms_since(t0) < 30000); /* not the 60 s pool_wait */
    ph_fx_track(f, VX_KIND_STT, o.s);
}

typedef struct speaker {
    vx_stream *s;
    size_t sentence;
} speaker;

static void *speak_thread(void *arg) {
    speaker *sp = arg;
    vx_error err = {0};
    static const int16_t zeros[BLOCK];
    const speech *a = &audio[sp->sentence];

    for (size_t i = 0; i < a->n; i += BLOCK)
        if (ps->stt->feed(sp->s, a->pcm + i, a->n - i < BLOCK ? a->n - i : BLOCK, &err)) break;
    for (unsigned ms = 0; ms < TAIL_MS; ms += 10) ps->stt->feed(sp->s, zeros, BLOCK, &err);
    ps->stt->finish(sp->s, &err);
    return NULL;
}

static void test_two_streams_decode_concurrently_on_two_decoders(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "2", "pool_max", "2", NULL);
    rec *r[2] = {fx_rec(f), fx_rec(f)};
    speaker sp[2];
    vx_error err = {0};
    pthread_t t[2];

    for (int i = 0; i < 2; i++) {
        assert_int_equal(stt_open(f, in, r[i], &sp[i].s, &err), VX_OK);
        sp[i].sentence = i ? 4 : 2;
    }
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&t[i], NULL, speak_thread, &sp[i]), 0);
    for (int i = 0; i < 2; i++) pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        assert_true(ph_rec_wait(r[i], ph_has_finals, 1));
        assert_string_equal(r[i]->d.finals[0], sentences[sp[i].sentence]);
        assert_int_equal(r[i]->d.errors, 0);
    }
}

/* ---------------------------------------------------------------- cancel, close */

static void test_cancel_mid_utterance_sends_canceled_and_no_final(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    feed_speech(s, audio[3].pcm, audio[3].n / 2);
    ps->stt->cancel(s);
    ps->stt->cancel(s); /* idempotent */
    assert_true(ph_rec_wait(r, ph_has_errors, 1));
    ph_sleep_ms(100);
    fx_close(f, s, r);
    ph_rec_snap(r, &d);
    assert_int_equal(d.errors, 1);
    assert_int_equal(d.err.code, VX_ECANCELED);
    assert_int_equal(d.n_finals, 0);
}

static void test_cancel_after_finish_replaces_the_pending_final(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    /* Either the final made it out before the cancel, or the cancel replaced
     * it: exactly one of them, never both. */
    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 4);
    ps->stt->cancel(s);
    assert_true(ph_rec_wait(r, has_ended, 1));
    ph_sleep_ms(100);
    fx_close(f, s, r);
    ph_rec_snap(r, &d);
    assert_int_equal(d.n_finals + (size_t)d.errors, 1);
}

static void test_cancel_after_a_final_sends_nothing(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 0);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    ps->stt->cancel(s);
    ph_sleep_ms(100);
    fx_close(f, s, r);
    ph_rec_snap(r, &d);
    assert_int_equal(d.n_finals, 1);
    assert_int_equal(d.errors, 0);
}

static void test_feed_and_finish_are_refused_after_cancel(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    int16_t pcm[BLOCK] = {0};

    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    ps->stt->cancel(s);
    assert_true(ph_rec_wait(r, ph_has_errors, 1));
    assert_int_equal(r->d.err.code, VX_ECANCELED);
    assert_int_equal(ps->stt->feed(s, pcm, BLOCK, &err), VX_ECANCELED);
    assert_int_equal(ps->stt->finish(s, &err), VX_ECANCELED);
}

static void test_no_event_after_close(void **state) {
    fixture *f = *state;
    size_t in = fx_inst(f, "pool_size", "1", NULL);
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    seen d;

    /* Closed while the worker has a whole sentence and its final to go. */
    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 4);
    fx_close(f, s, r);
    ph_sleep_ms(200);
    ph_rec_snap(r, &d);
    assert_int_equal(d.after_close, 0);

    /* The decoder went back to the pool between utterances. */
    r = fx_rec(f);
    assert_int_equal(stt_open(f, in, r, &s, &err), VX_OK);
    say(s, 1);
    assert_true(ph_rec_wait(r, ph_has_finals, 1));
    assert_string_equal(r->d.finals[0], sentences[1]);
}

/* ---------------------------------------------------------------- logging */

static void test_decoder_logs_stay_off_stderr(void **state) {
    fixture *f = *state;
    char path[128];
    rec *r = fx_rec(f);
    vx_error err = {0};
    vx_stream *s;
    struct stat st;
    int fd, saved;
    size_t in;

    snprintf(path, sizeof(path), "%s/stderr.txt", tmpdir);
    fflush(stderr);
    saved = dup(2);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    assert_true(saved >= 0 && fd >= 0);
    dup2(fd, 2);
    close(fd);

    in = fx_inst(f, "pool_size", "1", NULL);
    if (stt_open(f, in, r, &s, &err) == VX_OK) {
        say(s, 0);
        ph_rec_wait(r, ph_has_finals, 1);
        fx_close(f, s, r);
    }
    ps->shutdown(f->inst[in]);
    f->inst[in] = NULL;

    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    assert_int_equal(stat(path, &st), 0);
    unlink(path);
    fprintf(stderr, "# %lld bytes reached stderr\n", (long long)st.st_size);
    assert_true(st.st_size < 200);
    assert_int_equal(r->d.n_finals, 1);
}

int main(void) {
#define T(name) cmocka_unit_test_setup_teardown(name, fx_setup, fx_teardown)
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_descriptor_is_a_streaming_stt_with_partials),
        cmocka_unit_test(test_schema_defaults_point_at_the_debian_en_us_model),
        T(test_decoder_logs_stay_off_stderr),
        T(test_input_format_is_the_configured_samplerate),
        T(test_init_fails_naming_a_missing_acoustic_model),
        T(test_init_fails_naming_a_missing_language_model),
        T(test_init_fails_quoting_an_unknown_extra_arg),
        T(test_health_reports_busy_decoders),

        T(test_open_refuses_a_rate_other_than_samplerate),
        T(test_final_is_each_flite_sentence_exactly),
        T(test_final_confidence_is_a_posterior_between_0_and_1),
        T(test_extra_args_reach_the_decoder),
        T(test_partials_arrive_before_the_final),
        T(test_partial_interval_zero_sends_no_partials),
        T(test_stream_recognizes_a_second_utterance_after_a_final),
        T(test_first_utterance_of_a_fresh_decoder_in_the_8khz_voice),
        T(test_a_fresh_decoder_starts_from_the_mean_another_learned),
        T(test_cmn_restart_settings_are_checked),
        T(test_audio_after_finish_belongs_to_the_next_utterance),
        T(test_finish_without_audio_gives_an_empty_final),
        T(test_silence_gives_an_empty_final),
        T(test_jsgf_grammar_replaces_the_language_model),

        T(test_open_fails_unavailable_when_the_pool_stays_busy),
        T(test_waiting_open_gets_the_decoder_a_closed_stream_returns),
        T(test_pool_grows_on_demand_up_to_pool_max),
        T(test_cancel_wakes_an_open_waiting_for_a_decoder),
        T(test_two_streams_decode_concurrently_on_two_decoders),

        T(test_cancel_mid_utterance_sends_canceled_and_no_final),
        T(test_cancel_after_finish_replaces_the_pending_final),
        T(test_cancel_after_a_final_sends_nothing),
        T(test_feed_and_finish_are_refused_after_cancel),
        T(test_no_event_after_close),
    };
#undef T
    int failed;

    ph_wait_ms = WAIT_MS;
    /* Only what the tests search is kept; debug lines on request. */
    ph_log_echo = getenv("PS_TEST_VERBOSE") != NULL;
    ph_log_keep = VX_LOG_INFO;
    ps = ph_plugin_load(PS_SO, &ps_dl);
    if (!ps) return 1;
    if (getenv("PS_TEST_FILTER")) cmocka_set_test_filter(getenv("PS_TEST_FILTER"));
    failed = cmocka_run_group_tests(tests, speech_setup, speech_teardown);
    ph_plugin_unload(ps_dl);
    return failed ? 1 : 0;
}
