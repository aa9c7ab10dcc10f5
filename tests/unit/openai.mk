# tests/unit/openai.mk: the OpenAI-compatible plugins (llm_openai, stt_openai,
# tts_openai), loaded from their built .so files and run against
# tests/tools/mock_openai, a replaying server each test program starts on a
# free loopback port.
check_PROGRAMS += tests/tools/mock_openai
tests_tools_mock_openai_SOURCES = tests/tools/mock_openai.c
tests_tools_mock_openai_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS)
tests_tools_mock_openai_LDADD = $(MHD_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS)

VX_OAI_TEST_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tests/tools -I$(top_srcdir)/tests/unit \
	-DMOCK_OPENAI='"$(abs_top_builddir)/tests/tools/mock_openai"'
VX_OAI_TEST_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(CURL_CFLAGS) $(JANSSON_CFLAGS)
VX_OAI_TEST_LDADD = $(CURL_LIBS) $(JANSSON_LIBS) $(VX_HARNESS_LIBS)

check_PROGRAMS += tests/unit/test_llm_openai tests/unit/test_stt_openai \
	tests/unit/test_tts_openai
TESTS += tests/unit/test_llm_openai tests/unit/test_stt_openai tests/unit/test_tts_openai

tests_unit_test_llm_openai_SOURCES = tests/unit/test_llm_openai.c tests/tools/mock_openai.h \
	tests/unit/tool_rec.h
tests_unit_test_llm_openai_CPPFLAGS = $(VX_OAI_TEST_CPPFLAGS) \
	-DPLUGIN_SO='"$(abs_top_builddir)/plugins/llm_openai/.libs/llm_openai.so"'
tests_unit_test_llm_openai_CFLAGS = $(VX_OAI_TEST_CFLAGS)
tests_unit_test_llm_openai_LDADD = $(VX_OAI_TEST_LDADD)
EXTRA_tests_unit_test_llm_openai_DEPENDENCIES = plugins/llm_openai/llm_openai.la \
	tests/tools/mock_openai$(EXEEXT)

tests_unit_test_stt_openai_SOURCES = tests/unit/test_stt_openai.c tests/tools/mock_openai.h
tests_unit_test_stt_openai_CPPFLAGS = $(VX_OAI_TEST_CPPFLAGS) \
	-DPLUGIN_SO='"$(abs_top_builddir)/plugins/stt_openai/.libs/stt_openai.so"'
tests_unit_test_stt_openai_CFLAGS = $(VX_OAI_TEST_CFLAGS)
tests_unit_test_stt_openai_LDADD = $(VX_OAI_TEST_LDADD)
EXTRA_tests_unit_test_stt_openai_DEPENDENCIES = plugins/stt_openai/stt_openai.la \
	tests/tools/mock_openai$(EXEEXT)

tests_unit_test_tts_openai_SOURCES = tests/unit/test_tts_openai.c tests/tools/mock_openai.h
tests_unit_test_tts_openai_CPPFLAGS = $(VX_OAI_TEST_CPPFLAGS) \
	-DPLUGIN_SO='"$(abs_top_builddir)/plugins/tts_openai/.libs/tts_openai.so"'
tests_unit_test_tts_openai_CFLAGS = $(VX_OAI_TEST_CFLAGS)
tests_unit_test_tts_openai_LDADD = $(VX_OAI_TEST_LDADD)
EXTRA_tests_unit_test_tts_openai_DEPENDENCIES = plugins/tts_openai/tts_openai.la \
	tests/tools/mock_openai$(EXEEXT)
