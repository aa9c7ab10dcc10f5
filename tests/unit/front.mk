# tests/unit/front.mk: the one-port front (host/net/front.c), compiled straight
# into the test so it needs nothing else from the daemon.
check_PROGRAMS += tests/unit/test_front
TESTS += tests/unit/test_front
tests_unit_test_front_SOURCES = tests/unit/test_front.c host/net/front.c host/net/front.h \
	host/net/peers.c host/net/peers.h
tests_unit_test_front_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_front_LDADD = $(CMOCKA_LIBS) $(PTHREAD_LIBS)

# Connections grouped by client address (host/net/peers.c), the front's per-IP
# accounting.
check_PROGRAMS += tests/unit/test_peers
TESTS += tests/unit/test_peers
tests_unit_test_peers_SOURCES = tests/unit/test_peers.c host/net/peers.c host/net/peers.h
tests_unit_test_peers_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_peers_LDADD = $(CMOCKA_LIBS)

# Head deadlines on kept-alive HTTP connections (host/net/keepalive.c); the test
# plays libmicrohttpd's part, so it links only the library's headers.
check_PROGRAMS += tests/unit/test_keepalive
TESTS += tests/unit/test_keepalive
tests_unit_test_keepalive_SOURCES = tests/unit/test_keepalive.c host/net/keepalive.c host/net/keepalive.h
tests_unit_test_keepalive_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(MHD_CFLAGS)
tests_unit_test_keepalive_LDADD = $(CMOCKA_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS += tests/unit/test_defer
TESTS += tests/unit/test_defer
tests_unit_test_defer_SOURCES = tests/unit/test_defer.c host/base/defer.c host/base/defer.h
tests_unit_test_defer_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_defer_LDADD = $(CMOCKA_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS += tests/unit/test_pool
TESTS += tests/unit/test_pool
tests_unit_test_pool_SOURCES = tests/unit/test_pool.c host/base/worker.c host/base/worker.h
tests_unit_test_pool_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_pool_LDADD = $(CMOCKA_LIBS) $(PTHREAD_LIBS)

check_PROGRAMS += tests/unit/test_worker
TESTS += tests/unit/test_worker
tests_unit_test_worker_SOURCES = tests/unit/test_worker.c host/base/worker.c host/base/worker.h
tests_unit_test_worker_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_worker_LDADD = $(CMOCKA_LIBS) $(PTHREAD_LIBS)
