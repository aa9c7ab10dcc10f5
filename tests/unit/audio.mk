# tests/unit/audio.mk: the voice pipeline's audio and text helpers
# (host/pipeline/resample.c, host/pipeline/vad.c, host/pipeline/chunker.c), each compiled straight into
# its test so a test links only what the module needs.
check_PROGRAMS += tests/unit/test_resample tests/unit/test_vad \
	tests/unit/test_chunker
TESTS += tests/unit/test_resample tests/unit/test_vad \
	tests/unit/test_chunker

tests_unit_test_resample_SOURCES = tests/unit/test_resample.c \
	host/pipeline/resample.c host/pipeline/resample.h
tests_unit_test_resample_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(SPEEXDSP_CFLAGS)
tests_unit_test_resample_LDADD = $(CMOCKA_LIBS) $(SPEEXDSP_LIBS) -lm

tests_unit_test_vad_SOURCES = tests/unit/test_vad.c host/pipeline/vad.c host/pipeline/vad.h
tests_unit_test_vad_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_vad_LDADD = $(CMOCKA_LIBS) -lm

tests_unit_test_chunker_SOURCES = tests/unit/test_chunker.c \
	host/pipeline/chunker.c host/pipeline/chunker.h
tests_unit_test_chunker_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_chunker_LDADD = $(CMOCKA_LIBS)
