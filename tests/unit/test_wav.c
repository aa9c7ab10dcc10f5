/*
 * tools/wav.c: what the command-line tools accept as input WAV and write as
 * output WAV.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "wav.h"

/* A WAV image under construction. */
typedef struct img {
    unsigned char b[4096];
    size_t n;
} img;

static void put(img *m, const void *p, size_t n) {
    assert_true(m->n + n <= sizeof(m->b));
    memcpy(m->b + m->n, p, n);
    m->n += n;
}
static void put16(img *m, unsigned v) {
    unsigned char b[2] = {(unsigned char)v, (unsigned char)(v >> 8)};
    put(m, b, 2);
}
static void put32(img *m, uint32_t v) {
    unsigned char b[4] = {(unsigned char)v, (unsigned char)(v >> 8), (unsigned char)(v >> 16),
                          (unsigned char)(v >> 24)};
    put(m, b, 4);
}
static void begin(img *m) {
    m->n = 0;
    put(m, "RIFF", 4);
    put32(m, 0); /* patched by end() */
    put(m, "WAVE", 4);
}
static void end(img *m) {
    uint32_t v = (uint32_t)(m->n - 8);
    memcpy(m->b + 4, (unsigned char[4]){(unsigned char)v, (unsigned char)(v >> 8),
                                        (unsigned char)(v >> 16), (unsigned char)(v >> 24)}, 4);
}
static void fmt(img *m, unsigned tag, unsigned ch, uint32_t rate, unsigned bits) {
    put(m, "fmt ", 4);
    put32(m, 16);
    put16(m, tag);
    put16(m, ch);
    put32(m, rate);
    put32(m, rate * ch * bits / 8);
    put16(m, ch * bits / 8);
    put16(m, bits);
}
static void data16(img *m, const int16_t *s, size_t n) {
    put(m, "data", 4);
    put32(m, (uint32_t)(n * 2));
    for (size_t i = 0; i < n; i++) put16(m, (uint16_t)s[i]);
}

static int parse(const img *m, wav_audio *a, char *err) {
    return wav_parse(m->b, m->n, a, err, 256);
}

static void reads_mono_16bit_pcm_samples_exactly(void **state) {
    static const int16_t s[] = {0, 1, -1, 32767, -32768};
    img m;
    wav_audio a;
    char err[256];
    (void)state;
    begin(&m);
    fmt(&m, 1, 1, 16000, 16);
    data16(&m, s, 5);
    end(&m);
    assert_int_equal(parse(&m, &a, err), 0);
    assert_int_equal(a.rate, 16000);
    assert_int_equal(a.channels, 1);
    assert_int_equal(a.samples, 5);
    assert_memory_equal(a.pcm, s, sizeof(s));
    wav_free(&a);
}

static void downmixes_stereo_by_averaging_the_channels(void **state) {
    static const int16_t s[] = {1000, -3000, 32767, 32767, -32768, -32768};
    img m;
    wav_audio a;
    char err[256];
    (void)state;
    begin(&m);
    fmt(&m, 1, 2, 24000, 16);
    data16(&m, s, 6);
    end(&m);
    assert_int_equal(parse(&m, &a, err), 0);
    assert_int_equal(a.channels, 2);
    assert_int_equal(a.samples, 3);
    assert_int_equal(a.pcm[0], -1000);
    assert_int_equal(a.pcm[1], 32767);
    assert_int_equal(a.pcm[2], -32768);
    wav_free(&a);
}

static void skips_unknown_chunks_and_their_odd_pad_byte(void **state) {
    static const int16_t s[] = {7, 8};
    img m;
    wav_audio a;
    char err[256];
    (void)state;
    begin(&m);
    put(&m, "LIST", 4);
    put32(&m, 7);
    put(&m, "INFOabc\0", 8); /* 7 bytes + pad */
    fmt(&m, 1, 1, 8000, 16);
    put(&m, "fact", 4);
    put32(&m, 4);
    put32(&m, 2);
    data16(&m, s, 2);
    end(&m);
    assert_int_equal(parse(&m, &a, err), 0);
    assert_int_equal(a.samples, 2);
    assert_int_equal(a.pcm[0], 7);
    assert_int_equal(a.pcm[1], 8);
    wav_free(&a);
}

static void accepts_wave_format_extensible_pcm(void **state) {
    static const unsigned char pcm_guid[16] = {0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10, 0x00,
                                               0x80, 0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    static const int16_t s[] = {42};
    img m;
    wav_audio a;
    char err[256];
    (void)state;
    begin(&m);
    put(&m, "fmt ", 4);
    put32(&m, 40);
    put16(&m, 0xFFFE);
    put16(&m, 1);
    put32(&m, 48000);
    put32(&m, 96000);
    put16(&m, 2);
    put16(&m, 16);
    put16(&m, 22);
    put16(&m, 16);
    put32(&m, 4);
    put(&m, pcm_guid, 16);
    data16(&m, s, 1);
    end(&m);
    assert_int_equal(parse(&m, &a, err), 0);
    assert_int_equal(a.rate, 48000);
    assert_int_equal(a.pcm[0], 42);
    wav_free(&a);
}

static void reads_a_data_chunk_of_unknown_size_to_the_end(void **state) {
    img m;
    wav_audio a;
    char err[256];
    (void)state;
    begin(&m);
    fmt(&m, 1, 1, 16000, 16);
    put(&m, "data", 4);
    put32(&m, 0xFFFFFFFFu);
    put16(&m, 5);
    put16(&m, 6);
    put16(&m, 7);
    memcpy(m.b + 4, "\xff\xff\xff\xff", 4); /* as a writer to a pipe leaves it */
    assert_int_equal(parse(&m, &a, err), 0);
    assert_int_equal(a.samples, 3);
    assert_int_equal(a.pcm[2], 7);
    wav_free(&a);
}

static void drops_a_trailing_partial_frame(void **state) {
    img m;
    wav_audio a;
    char err[256];
    (void)state;
    begin(&m);
    fmt(&m, 1, 2, 16000, 16);
    put(&m, "data", 4);
    put32(&m, 6); /* one stereo frame and half of another */
    put16(&m, 10);
    put16(&m, 20);
    put16(&m, 30);
    end(&m);
    assert_int_equal(parse(&m, &a, err), 0);
    assert_int_equal(a.samples, 1);
    assert_int_equal(a.pcm[0], 15);
    wav_free(&a);
}

/* Build a file with the given fmt fields and expect a refusal naming `why`. */
static void expect_refused(unsigned tag, unsigned ch, unsigned bits, const char *why) {
    static const int16_t s[] = {1, 2, 3, 4};
    img m;
    wav_audio a;
    char err[256] = "";
    begin(&m);
    fmt(&m, tag, ch, 16000, bits);
    data16(&m, s, 4);
    end(&m);
    assert_int_equal(parse(&m, &a, err), -1);
    assert_null(a.pcm);
    assert_non_null(strstr(err, why));
}

static void refuses_float_samples(void **state) {
    (void)state;
    expect_refused(3, 1, 32, "float");
}

static void refuses_8bit_pcm(void **state) {
    (void)state;
    expect_refused(1, 1, 8, "8-bit");
}

static void refuses_mu_law(void **state) {
    (void)state;
    expect_refused(7, 1, 8, "mu-law");
}

static void refuses_more_than_two_channels(void **state) {
    (void)state;
    expect_refused(1, 3, 16, "3 channels");
}

static void refuses_big_endian_rifx(void **state) {
    img m;
    wav_audio a;
    char err[256];
    (void)state;
    begin(&m);
    fmt(&m, 1, 1, 16000, 16);
    end(&m);
    memcpy(m.b, "RIFX", 4);
    assert_int_equal(parse(&m, &a, err), -1);
    assert_non_null(strstr(err, "RIFX"));
}

static void refuses_a_file_without_data_chunk(void **state) {
    img m;
    wav_audio a;
    char err[256];
    (void)state;
    begin(&m);
    fmt(&m, 1, 1, 16000, 16);
    end(&m);
    assert_int_equal(parse(&m, &a, err), -1);
    assert_non_null(strstr(err, "no 'data'"));
}

static void refuses_a_chunk_that_runs_past_the_end(void **state) {
    img m;
    wav_audio a;
    char err[256];
    (void)state;
    begin(&m);
    fmt(&m, 1, 1, 16000, 16);
    put(&m, "LIST", 4);
    put32(&m, 1000);
    put32(&m, 0);
    end(&m);
    assert_int_equal(parse(&m, &a, err), -1);
    assert_non_null(strstr(err, "LIST"));
}

static void written_file_reads_back_with_its_rate_and_samples(void **state) {
    static const unsigned char le[] = {0x01, 0x00, 0xff, 0xff, 0x00, 0x80};
    char path[] = "/tmp/wav-test-XXXXXX", err[256];
    wav_writer *w;
    wav_audio a;
    int fd;
    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    w = wav_writer_open(path, 24000, err, sizeof(err));
    assert_non_null(w);
    wav_writer_set_rate(w, 16000); /* learnt after opening */
    assert_int_equal(wav_writer_append(w, le, 4, err, sizeof(err)), 0);
    assert_int_equal(wav_writer_append(w, le + 4, 2, err, sizeof(err)), 0);
    assert_int_equal(wav_writer_samples(w), 3);
    assert_int_equal(wav_writer_close(w, err, sizeof(err)), 0);
    assert_int_equal(wav_read(path, &a, err, sizeof(err)), 0);
    unlink(path);
    assert_int_equal(a.rate, 16000);
    assert_int_equal(a.samples, 3);
    assert_int_equal(a.pcm[0], 1);
    assert_int_equal(a.pcm[1], -1);
    assert_int_equal(a.pcm[2], -32768);
    wav_free(&a);
}

static void writer_refuses_an_odd_byte_count(void **state) {
    char path[] = "/tmp/wav-test-XXXXXX", err[256];
    wav_writer *w;
    int fd;
    (void)state;
    fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    w = wav_writer_open(path, 24000, err, sizeof(err));
    assert_non_null(w);
    assert_int_equal(wav_writer_append(w, "abc", 3, err, sizeof(err)), -1);
    assert_int_equal(wav_writer_samples(w), 0);
    assert_int_equal(wav_writer_close(w, err, sizeof(err)), 0);
    unlink(path);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(reads_mono_16bit_pcm_samples_exactly),
        cmocka_unit_test(downmixes_stereo_by_averaging_the_channels),
        cmocka_unit_test(skips_unknown_chunks_and_their_odd_pad_byte),
        cmocka_unit_test(accepts_wave_format_extensible_pcm),
        cmocka_unit_test(reads_a_data_chunk_of_unknown_size_to_the_end),
        cmocka_unit_test(drops_a_trailing_partial_frame),
        cmocka_unit_test(refuses_float_samples),
        cmocka_unit_test(refuses_8bit_pcm),
        cmocka_unit_test(refuses_mu_law),
        cmocka_unit_test(refuses_more_than_two_channels),
        cmocka_unit_test(refuses_big_endian_rifx),
        cmocka_unit_test(refuses_a_file_without_data_chunk),
        cmocka_unit_test(refuses_a_chunk_that_runs_past_the_end),
        cmocka_unit_test(written_file_reads_back_with_its_rate_and_samples),
        cmocka_unit_test(writer_refuses_an_odd_byte_count),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
