# The daemon.
bin_PROGRAMS += voxray
voxray_SOURCES = \
	host/main.c host/app.h \
	host/base/cfg.c host/base/cfg.h \
	host/settings.c host/settings.h \
	host/base/log.c host/base/log.h \
	host/base/acl.c host/base/acl.h \
	host/plugin/loader.c host/plugin/loader.h \
	host/plugin/plugins.c host/plugin/plugins.h \
	host/plugin/services.c host/plugin/services.h \
	host/base/defer.c host/base/defer.h \
	host/plugin/gate.c host/plugin/gate.h \
	host/plugin/health.c host/plugin/health.h \
	host/net/front.c host/net/front.h \
	host/net/peers.c host/net/peers.h \
	host/net/http.c host/net/http.h \
	host/net/keepalive.c host/net/keepalive.h \
	host/base/worker.c host/base/worker.h \
	host/pipeline/stage.c host/pipeline/stage.h \
	host/net/ws.c host/net/ws.h \
	host/net/webrtc.c host/net/webrtc.h host/net/sdp_check.c host/net/sdp_check.h \
	host/net/auth.c host/net/auth.h \
	host/net/client_limits.c host/net/client_limits.h \
	host/net/head.c host/net/head.h \
	host/session/session.c host/session/session.h host/session/session_int.h \
	host/session/conversation.c host/session/input.c host/session/respond.c \
	host/session/persist.c host/session/persist.h host/session/persist_state.c \
	host/recording/recorder.c host/recording/recorder.h \
	host/recording/recording.c host/recording/recording.h \
	host/base/fsutil.c host/base/fsutil.h \
	tools/wav.c tools/wav.h \
	host/session/protocol.c host/session/protocol.h \
	host/pipeline/resample.c host/pipeline/resample.h \
	host/pipeline/vad.c host/pipeline/vad.h \
	host/pipeline/chunker.c host/pipeline/chunker.h
voxray_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(LWS_CFLAGS) $(JANSSON_CFLAGS) $(INIH_CFLAGS) \
	$(CRYPTO_CFLAGS) $(SPEEXDSP_CFLAGS) $(GST_CFLAGS)
voxray_LDADD = metrics/libvxmetrics.a $(MHD_LIBS) $(LWS_LIBS) $(EV_LIBS) $(JANSSON_LIBS) $(INIH_LIBS) \
	$(CRYPTO_LIBS) $(SPEEXDSP_LIBS) $(GST_LIBS) $(PTHREAD_LIBS) -lm -ldl
voxray_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/tools
