# One folder per plugin; each has its own local.mk.
include $(srcdir)/plugins/store_memory/local.mk
include $(srcdir)/plugins/store_redis/local.mk
include $(srcdir)/plugins/sim/local.mk
include $(srcdir)/plugins/stt_pocketsphinx/local.mk
include $(srcdir)/plugins/tts_flite/local.mk
include $(srcdir)/plugins/tts_espeak/local.mk
include $(srcdir)/plugins/llm_eliza/local.mk
include $(srcdir)/plugins/llm_openai/local.mk
include $(srcdir)/plugins/stt_openai/local.mk
include $(srcdir)/plugins/tts_openai/local.mk
include $(srcdir)/plugins/rec_file/local.mk
include $(srcdir)/plugins/rec_s3/local.mk

# Plugins are dlopen()ed by file name; libtool's .la files are not needed
# at run time.
install-exec-hook:
	rm -f $(DESTDIR)$(pkglibdir)/*.la
