# tests/unit/rec_file.mk: the file recording sink, loaded from its built .so.
check_PROGRAMS += tests/unit/test_rec_file
TESTS += tests/unit/test_rec_file
tests_unit_test_rec_file_SOURCES = tests/unit/test_rec_file.c
tests_unit_test_rec_file_CPPFLAGS = $(AM_CPPFLAGS) \
	-DREC_FILE_SO='"$(abs_top_builddir)/plugins/rec_file/.libs/rec_file.so"'
tests_unit_test_rec_file_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_rec_file_LDADD = $(VX_HARNESS_LIBS)
EXTRA_tests_unit_test_rec_file_DEPENDENCIES = plugins/rec_file/rec_file.la
