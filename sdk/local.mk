voxrayincludedir = $(includedir)/voxray
voxrayinclude_HEADERS = sdk/voxray/plugin.h
# The first-plugin guide, beside the header it explains.
dist_voxrayinclude_DATA = sdk/README.md
EXTRA_DIST += sdk/voxray-plugin.pc.in

# The conformance checker plugin authors run on their .so: the daemon's own
# loader and config validation, a small host API table of its own.
bin_PROGRAMS += voxray-plugin-check
voxray_plugin_check_SOURCES = sdk/voxray-plugin-check.c \
	host/plugin/loader.c host/plugin/loader.h host/base/cfg.c host/base/cfg.h \
	tools/wav.c tools/wav.h
voxray_plugin_check_CFLAGS = $(AM_CFLAGS) $(INIH_CFLAGS)
voxray_plugin_check_LDADD = $(INIH_LIBS) $(PTHREAD_LIBS) -lm -ldl

include $(srcdir)/sdk/examples/local.mk

tests/integration/sdk.log: voxray-plugin-check$(EXEEXT) sdk/examples/tts_tone.la sdk/examples/stt_level.la
