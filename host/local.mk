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
	host/http.c host/http.h
voxray_CFLAGS = $(AM_CFLAGS) $(MHD_CFLAGS) $(JANSSON_CFLAGS) $(INIH_CFLAGS)
voxray_LDADD = metrics/libvxmetrics.a $(MHD_LIBS) $(JANSSON_LIBS) $(INIH_LIBS) $(PTHREAD_LIBS) -lm -ldl
