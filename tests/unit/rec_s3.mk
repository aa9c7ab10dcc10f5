# tests/unit/rec_s3.mk: the S3 recording sink against a signature-checking S3
# server (tests/tools/s3rver.mjs, npm @20minutes/s3rver from
# tests/node/node_modules, run with `node` from PATH or $NODE), and through
# voxray-plugin-check.
check_PROGRAMS += tests/unit/test_rec_s3
TESTS += tests/unit/test_rec_s3
tests_unit_test_rec_s3_SOURCES = tests/unit/test_rec_s3.c
tests_unit_test_rec_s3_CPPFLAGS = $(AM_CPPFLAGS) \
	-DPLUGIN_SO='"$(abs_top_builddir)/plugins/rec_s3/.libs/rec_s3.so"' \
	-DPLUGIN_CHECK='"$(abs_top_builddir)/voxray-plugin-check$(EXEEXT)"' \
	-DS3RVER_MJS='"$(abs_top_srcdir)/tests/tools/s3rver.mjs"' \
	-DNODE_MODULES='"$(abs_top_srcdir)/tests/node/node_modules"'
tests_unit_test_rec_s3_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CURL_CFLAGS) $(CRYPTO_CFLAGS)
tests_unit_test_rec_s3_LDADD = $(CURL_LIBS) $(CRYPTO_LIBS) $(VX_HARNESS_LIBS)
EXTRA_tests_unit_test_rec_s3_DEPENDENCIES = plugins/rec_s3/rec_s3.la \
	voxray-plugin-check$(EXEEXT)
EXTRA_DIST += tests/tools/s3rver.mjs
