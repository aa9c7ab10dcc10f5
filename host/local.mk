# The daemon.
bin_PROGRAMS += voxray
voxray_SOURCES = \
	host/main.c host/app.h \
	host/cfg.c host/cfg.h \
	host/settings.c host/settings.h \
	host/log.c host/log.h \
	host/acl.c host/acl.h \
	host/loader.c host/loader.h \
	host/plugins.c host/plugins.h \
	host/defer.c host/defer.h \
	host/gate.c host/gate.h \
	host/health.c host/health.h \
	host/front.c host/front.h \
	host/peers.c host/peers.h \
	host/http.c host/http.h \
	host/keepalive.c host/keepalive.h \
	host/worker.c host/worker.h \
	host/stage.c host/stage.h \
	host/ws.c host/ws.h \
	host/auth.c host/auth.h \
	host/client_limits.c host/client_limits.h \
	host/head.c host/head.h \
	host/session.c host/session.h host/session_int.h \
	host/conversation.c host/input.c host/respond.c \
	host/persist.c host/persist.h host/persist_state.c \
	host/recorder.c host/recorder.h \
	host/recording.c host/recording.h \
	host/fsutil.c host/fsutil.h \
	tools/wav.c tools/wav.h \
	host/protocol.c host/protocol.h \
	host/resample.c host/resample.h \
	host/vad.c host/vad.h \
	host/chunker.c host/chunker.h
voxray_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(LWS_CFLAGS) $(JANSSON_CFLAGS) $(INIH_CFLAGS) \
	$(CRYPTO_CFLAGS) $(SPEEXDSP_CFLAGS)
voxray_LDADD = metrics/libvxmetrics.a $(MHD_LIBS) $(LWS_LIBS) $(EV_LIBS) $(JANSSON_LIBS) $(INIH_LIBS) \
	$(CRYPTO_LIBS) $(SPEEXDSP_LIBS) $(PTHREAD_LIBS) -lm -ldl
voxray_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tools
