# tests/unit/protocol.mk: the OpenAI Realtime translation (host/session/protocol.c),
# compiled straight into its test. Its libFuzzer target is in tests/fuzz.
check_PROGRAMS += tests/unit/test_protocol
TESTS += tests/unit/test_protocol
tests_unit_test_protocol_SOURCES = tests/unit/test_protocol.c host/session/protocol.c host/session/protocol.h
tests_unit_test_protocol_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
tests_unit_test_protocol_LDADD = $(CMOCKA_LIBS) $(JANSSON_LIBS) $(CRYPTO_LIBS) -lm
