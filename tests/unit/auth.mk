# tests/unit/auth.mk: who may connect. API keys and client secrets
# (host/net/auth.c), per-client limits (host/net/client_limits.c) and the raw head
# reader the upgrade checks use (host/net/head.c), each compiled into its test.
check_PROGRAMS += tests/unit/test_auth tests/unit/test_client_limits tests/unit/test_head
TESTS += tests/unit/test_auth tests/unit/test_client_limits tests/unit/test_head

tests_unit_test_auth_SOURCES = tests/unit/test_auth.c host/net/auth.c host/net/auth.h \
	host/base/log.c host/base/log.h
tests_unit_test_auth_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CRYPTO_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_auth_LDADD = metrics/libvxmetrics.a $(CMOCKA_LIBS) $(CRYPTO_LIBS) \
	$(JANSSON_LIBS) $(PTHREAD_LIBS) -lm

tests_unit_test_client_limits_SOURCES = tests/unit/test_client_limits.c \
	host/net/client_limits.c host/net/client_limits.h host/base/acl.c host/base/acl.h \
	host/settings.c host/settings.h host/base/cfg.c host/base/cfg.h host/base/log.c host/base/log.h
tests_unit_test_client_limits_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(INIH_CFLAGS) $(JANSSON_CFLAGS)
tests_unit_test_client_limits_LDADD = metrics/libvxmetrics.a $(CMOCKA_LIBS) $(INIH_LIBS) \
	$(JANSSON_LIBS) $(PTHREAD_LIBS) -lm

tests_unit_test_head_SOURCES = tests/unit/test_head.c host/net/head.c host/net/head.h
tests_unit_test_head_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_head_LDADD = $(CMOCKA_LIBS)
