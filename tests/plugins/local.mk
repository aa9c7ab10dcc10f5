# Test plugins: one valid plugin per shape the loader must accept and one
# fault-injecting plugin per reason it must refuse (tests/unit/test_loader.c).
# check_LTLIBRARIES with -rpath (in VX_PLUGIN_LINK) become real shared
# modules, in tests/plugins/.libs/NAME.so; they are built by `make check`
# only, never installed. Tests that load them depend on $(VX_TEST_PLUGINS).
VX_TEST_PLUGINS = \
	tests/plugins/good_store.la \
	tests/plugins/old_minor.la \
	tests/plugins/multi_kind.la \
	tests/plugins/init_fails.la \
	tests/plugins/bad_magic.la \
	tests/plugins/bad_major.la \
	tests/plugins/newer_minor.la \
	tests/plugins/small_struct.la \
	tests/plugins/missing_method.la \
	tests/plugins/null_entry.la \
	tests/plugins/no_entry.la \
	tests/plugins/no_name.la \
	tests/plugins/wrong_name.la \
	tests/plugins/no_kinds.la \
	tests/plugins/unknown_kind.la \
	tests/plugins/null_vtable.la \
	tests/plugins/small_vtable.la \
	tests/plugins/bad_schema.la \
	tests/plugins/sink_faulty.la \
	tests/plugins/sink_accepts_all.la \
	tests/plugins/slow_cancel.la \
	tests/plugins/late_partial.la \
	tests/plugins/bad_metric.la \
	tests/plugins/entry_logs.la \
	tests/plugins/reload_llm_v1.la \
	tests/plugins/reload_llm_v2.la
check_LTLIBRARIES += $(VX_TEST_PLUGINS)
EXTRA_DIST += tests/plugins/sink_valid.h

tests_plugins_good_store_la_SOURCES = tests/plugins/good_store.c
tests_plugins_good_store_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_good_store_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_old_minor_la_SOURCES = tests/plugins/old_minor.c
tests_plugins_old_minor_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_old_minor_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_multi_kind_la_SOURCES = tests/plugins/multi_kind.c
tests_plugins_multi_kind_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_multi_kind_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_init_fails_la_SOURCES = tests/plugins/init_fails.c
tests_plugins_init_fails_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_init_fails_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_bad_magic_la_SOURCES = tests/plugins/bad_magic.c
tests_plugins_bad_magic_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_bad_magic_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_bad_major_la_SOURCES = tests/plugins/bad_major.c
tests_plugins_bad_major_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_bad_major_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_newer_minor_la_SOURCES = tests/plugins/newer_minor.c
tests_plugins_newer_minor_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_newer_minor_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_small_struct_la_SOURCES = tests/plugins/small_struct.c
tests_plugins_small_struct_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_small_struct_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_missing_method_la_SOURCES = tests/plugins/missing_method.c
tests_plugins_missing_method_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_missing_method_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_null_entry_la_SOURCES = tests/plugins/null_entry.c
tests_plugins_null_entry_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_null_entry_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_no_entry_la_SOURCES = tests/plugins/no_entry.c
tests_plugins_no_entry_la_CFLAGS = $(VX_PLUGIN_CC)
# Exports everything it defines: its symbol is just not vx_plugin_entry.
tests_plugins_no_entry_la_LDFLAGS = -module -avoid-version -shared -no-undefined \
	-rpath $(pkglibdir) $(SAN_CFLAGS)

tests_plugins_no_name_la_SOURCES = tests/plugins/no_name.c
tests_plugins_no_name_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_no_name_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_wrong_name_la_SOURCES = tests/plugins/wrong_name.c
tests_plugins_wrong_name_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_wrong_name_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_no_kinds_la_SOURCES = tests/plugins/no_kinds.c
tests_plugins_no_kinds_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_no_kinds_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_unknown_kind_la_SOURCES = tests/plugins/unknown_kind.c
tests_plugins_unknown_kind_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_unknown_kind_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_null_vtable_la_SOURCES = tests/plugins/null_vtable.c
tests_plugins_null_vtable_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_null_vtable_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_small_vtable_la_SOURCES = tests/plugins/small_vtable.c
tests_plugins_small_vtable_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_small_vtable_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_bad_schema_la_SOURCES = tests/plugins/bad_schema.c
tests_plugins_bad_schema_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_bad_schema_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_sink_faulty_la_SOURCES = tests/plugins/sink_faulty.c
tests_plugins_sink_faulty_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_sink_faulty_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_sink_accepts_all_la_SOURCES = tests/plugins/sink_accepts_all.c
tests_plugins_sink_accepts_all_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_sink_accepts_all_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_slow_cancel_la_SOURCES = tests/plugins/slow_cancel.c
tests_plugins_slow_cancel_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_slow_cancel_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_bad_metric_la_SOURCES = tests/plugins/bad_metric.c
tests_plugins_bad_metric_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_bad_metric_la_LDFLAGS = $(VX_PLUGIN_LINK)

tests_plugins_entry_logs_la_SOURCES = tests/plugins/entry_logs.c
tests_plugins_entry_logs_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_entry_logs_la_LDFLAGS = $(VX_PLUGIN_LINK)
tests_plugins_slow_cancel_la_LIBADD = $(PTHREAD_LIBS)

tests_plugins_late_partial_la_SOURCES = tests/plugins/late_partial.c
tests_plugins_late_partial_la_CFLAGS = $(VX_PLUGIN_CC)
tests_plugins_late_partial_la_LDFLAGS = $(VX_PLUGIN_LINK)
tests_plugins_late_partial_la_LIBADD = $(PTHREAD_LIBS)

# One plugin (reload_llm) in two releases: copied over each other as
# reload_llm.so under a running daemon (tests/node/reload.test.mjs).
tests_plugins_reload_llm_v1_la_SOURCES = tests/plugins/reload_llm.c
tests_plugins_reload_llm_v1_la_CFLAGS = $(VX_PLUGIN_CC) -DRL_VERSION='"1"' -DRL_REPLY='"Version one speaking."'
tests_plugins_reload_llm_v1_la_LDFLAGS = $(VX_PLUGIN_LINK)
tests_plugins_reload_llm_v1_la_LIBADD = $(PTHREAD_LIBS)

tests_plugins_reload_llm_v2_la_SOURCES = tests/plugins/reload_llm.c
tests_plugins_reload_llm_v2_la_CFLAGS = $(VX_PLUGIN_CC) -DRL_VERSION='"2"' -DRL_REPLY='"Version two here."'
tests_plugins_reload_llm_v2_la_LDFLAGS = $(VX_PLUGIN_LINK)
tests_plugins_reload_llm_v2_la_LIBADD = $(PTHREAD_LIBS)
