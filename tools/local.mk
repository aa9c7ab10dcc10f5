# tools/local.mk: command-line tools installed with the daemon.

# voxray-client: a Realtime WebSocket client that talks to a server from
# WAV files and reports transcripts, replies and latencies.
bin_PROGRAMS += tools/voxray-client
tools_voxray_client_SOURCES = \
	tools/voxray-client.c \
	tools/cliutil.c tools/cliutil.h \
	tools/wav.c tools/wav.h
tools_voxray_client_CFLAGS = $(AM_CFLAGS) $(LWS_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
tools_voxray_client_LDADD = $(LWS_LIBS) $(JANSSON_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS) -lm

# voxray-loadtest: thousands of concurrent Realtime sessions from one
# process and one thread, with per-stage latencies and server resource use.
# Its WebSocket client is lt_ws.c (OpenSSL, http_parser, wslay frames) on
# an epoll loop.
bin_PROGRAMS += tools/voxray-loadtest
tools_voxray_loadtest_SOURCES = \
	tools/voxray-loadtest.c \
	tools/lt_stats.c tools/lt_stats.h \
	tools/lt_timer.c tools/lt_timer.h \
	tools/lt_proc.c tools/lt_proc.h \
	tools/lt_metrics.c tools/lt_metrics.h \
	tools/lt_scan.c tools/lt_scan.h \
	tools/lt_ws.c tools/lt_ws.h \
	tools/cliutil.c tools/cliutil.h \
	tools/wav.c tools/wav.h
# (libwebsockets only splits the URL, in cliutil.c.)
tools_voxray_loadtest_CFLAGS = $(AM_CFLAGS) $(JANSSON_CFLAGS) $(CURL_CFLAGS) $(SSL_CFLAGS) \
	$(CRYPTO_CFLAGS) $(LWS_CFLAGS)
tools_voxray_loadtest_LDADD = $(JANSSON_LIBS) $(CURL_LIBS) $(SSL_LIBS) $(CRYPTO_LIBS) \
	$(WSLAY_LIBS) $(HTTP_PARSER_LIBS) $(LWS_LIBS) -lm
