# tests/unit/store.mk: the session-store plugins, loaded from their built .so
# files (never linked in), against real redis-server processes.
check_PROGRAMS += tests/unit/test_store
TESTS += tests/unit/test_store
tests_unit_test_store_SOURCES = tests/unit/test_store.c
tests_unit_test_store_CPPFLAGS = $(AM_CPPFLAGS) \
	-DSTORE_MEMORY_SO='"$(abs_top_builddir)/plugins/store_memory/.libs/store_memory.so"' \
	-DSTORE_REDIS_SO='"$(abs_top_builddir)/plugins/store_redis/.libs/store_redis.so"'
tests_unit_test_store_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(HIREDIS_CFLAGS)
tests_unit_test_store_LDADD = $(HIREDIS_LIBS) $(VX_HARNESS_LIBS)
EXTRA_tests_unit_test_store_DEPENDENCIES = \
	plugins/store_memory/store_memory.la plugins/store_redis/store_redis.la
