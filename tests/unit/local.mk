# tests/unit/local.mk: the daemon's configuration, settings, logging and ACL
# modules, each compiled straight into its test so a test links only what the
# module itself needs.
check_PROGRAMS += tests/unit/test_cfg tests/unit/test_settings \
	tests/unit/test_log tests/unit/test_acl
TESTS += tests/unit/test_cfg tests/unit/test_settings \
	tests/unit/test_log tests/unit/test_acl

tests_unit_test_cfg_SOURCES = tests/unit/test_cfg.c host/base/cfg.c host/base/cfg.h
tests_unit_test_cfg_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(INIH_CFLAGS)
tests_unit_test_cfg_LDADD = $(CMOCKA_LIBS) $(INIH_LIBS) -lm

tests_unit_test_settings_SOURCES = tests/unit/test_settings.c \
	host/settings.c host/settings.h host/base/cfg.c host/base/cfg.h \
	host/base/acl.c host/base/acl.h host/base/log.c host/base/log.h
tests_unit_test_settings_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(INIH_CFLAGS) \
	$(JANSSON_CFLAGS)
tests_unit_test_settings_LDADD = metrics/libvxmetrics.a $(CMOCKA_LIBS) \
	$(INIH_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm

tests_unit_test_log_SOURCES = tests/unit/test_log.c host/base/log.c host/base/log.h
tests_unit_test_log_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_log_LDADD = $(CMOCKA_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS)

tests_unit_test_acl_SOURCES = tests/unit/test_acl.c host/base/acl.c host/base/acl.h
tests_unit_test_acl_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_acl_LDADD = $(CMOCKA_LIBS)

# The WAV reader/writer of tools/voxray-client.
check_PROGRAMS += tests/unit/test_wav
TESTS += tests/unit/test_wav
tests_unit_test_wav_SOURCES = tests/unit/test_wav.c tools/wav.c tools/wav.h
tests_unit_test_wav_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tools
tests_unit_test_wav_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_wav_LDADD = $(CMOCKA_LIBS)

# The timer heap of tools/voxray-loadtest.
check_PROGRAMS += tests/unit/test_lt_timer
TESTS += tests/unit/test_lt_timer
tests_unit_test_lt_timer_SOURCES = tests/unit/test_lt_timer.c tools/lt_timer.c tools/lt_timer.h
tests_unit_test_lt_timer_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tools
tests_unit_test_lt_timer_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_lt_timer_LDADD = $(CMOCKA_LIBS)

# Durable file operations of the recording pipeline.
check_PROGRAMS += tests/unit/test_fsutil
TESTS += tests/unit/test_fsutil
tests_unit_test_fsutil_SOURCES = tests/unit/test_fsutil.c host/base/fsutil.c host/base/fsutil.h
tests_unit_test_fsutil_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_fsutil_LDADD = $(CMOCKA_LIBS)

# The session state document of the session store.
check_PROGRAMS += tests/unit/test_persist_state
TESTS += tests/unit/test_persist_state
tests_unit_test_persist_state_SOURCES = tests/unit/test_persist_state.c host/session/persist_state.c \
	host/session/persist.h host/session/conversation.c host/session/protocol.c host/session/protocol.h
tests_unit_test_persist_state_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
tests_unit_test_persist_state_LDADD = $(CMOCKA_LIBS) $(JANSSON_LIBS) $(CRYPTO_LIBS) -lm

# The SDP offer checks of POST /v1/realtime/calls.
check_PROGRAMS += tests/unit/test_sdp_check
TESTS += tests/unit/test_sdp_check
tests_unit_test_sdp_check_SOURCES = tests/unit/test_sdp_check.c host/net/sdp_check.c host/net/sdp_check.h
tests_unit_test_sdp_check_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_sdp_check_LDADD = $(CMOCKA_LIBS)
