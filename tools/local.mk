# tools/local.mk: command-line tools installed with the daemon.

# voxray-client: a Realtime WebSocket client that talks to a server from
# WAV files and reports transcripts, replies and latencies.
bin_PROGRAMS += tools/voxray-client
tools_voxray_client_SOURCES = \
	tools/voxray-client.c \
	tools/wav.c tools/wav.h
tools_voxray_client_CFLAGS = $(AM_CFLAGS) $(LWS_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
tools_voxray_client_LDADD = $(LWS_LIBS) $(JANSSON_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS) -lm
