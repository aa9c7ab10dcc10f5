# tests/fuzz/local.mk: libFuzzer targets for every parser of outside input.
#
# Each target fuzz_NAME.c defines LLVMFuzzerTestOneInput. Two builds use the
# same source lists (FUZZ_SRC_NAME) and flags:
#   - `make check` links each target with replay.c (a plain main) in the
#     ordinary build and replays its committed inputs, corpus/NAME and
#     regressions/NAME, as a TAP test (tests/fuzz/fuzz_NAME);
#   - `make fuzz` builds each with clang -fsanitize=fuzzer,address,undefined
#     and runs it for FUZZ_SECONDS (default 60) on a scratch copy of its
#     inputs under fuzz-out/ (fuzz.sh), one target at a time, and prints
#     runs, exec/s, coverage, corpus and findings per target.
#     FUZZ_TARGETS="sse wav" picks some; FUZZ_CC names another clang.
# A finding's reproducer goes into regressions/NAME once the bug is fixed.

FUZZ_TARGETS = protocol sse llm_stream oai_body wav cfg front upgrade session_state redis lt_scan sdp
FUZZ_SECONDS = 60
FUZZ_CC = clang
FUZZ_OUT = fuzz-out
FUZZ_CLANG_FLAGS = -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -Wall -Wextra -Wno-unused-parameter
FUZZ_REPLAY_CPPFLAGS = $(AM_CPPFLAGS) -DFUZZ_DIR='"$(abs_top_srcdir)/tests/fuzz"'

# ---- the targets: sources (headers only for dependency tracking), extra
# preprocessor/compiler flags, libraries, and libFuzzer's -max_len.

# Client events of the Realtime protocol (host/session/protocol.c).
FUZZ_SRC_protocol = tests/fuzz/fuzz_protocol.c host/session/protocol.c host/session/protocol.h
FUZZ_CPP_protocol = $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
FUZZ_LIBS_protocol = $(JANSSON_LIBS) $(CRYPTO_LIBS) -lm
FUZZ_MAXLEN_protocol = 8192

# text/event-stream of OpenAI-compatible servers (plugins/llm_openai/sse.c).
FUZZ_SRC_sse = tests/fuzz/fuzz_sse.c plugins/llm_openai/sse.c plugins/llm_openai/sse.h
FUZZ_CPP_sse = -I$(top_srcdir)/plugins/llm_openai
FUZZ_LIBS_sse =
FUZZ_MAXLEN_sse = 8192

# What llm_openai reads out of an answer: streamed chunks, tool-call deltas,
# usage, error objects, non-streamed completions (chat.c, tools.c, sse.c;
# oai_client.c for its error helpers).
FUZZ_SRC_llm_stream = tests/fuzz/fuzz_llm_stream.c plugins/llm_openai/chat.c plugins/llm_openai/chat.h \
	plugins/llm_openai/tools.c plugins/llm_openai/tools.h plugins/llm_openai/sse.c plugins/llm_openai/sse.h \
	plugins/llm_openai/oai_client.c plugins/llm_openai/oai_client.h
FUZZ_CPP_llm_stream = -I$(top_srcdir)/plugins/llm_openai $(CURL_CFLAGS) $(JANSSON_CFLAGS)
FUZZ_LIBS_llm_stream = $(CURL_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm
FUZZ_MAXLEN_llm_stream = 16384

# Other bodies the OpenAI plugins read: HTTP error answers (all three),
# transcription answers (stt_openai), raw speech audio (tts_openai).
FUZZ_SRC_oai_body = tests/fuzz/fuzz_oai_body.c plugins/llm_openai/oai_client.c \
	plugins/llm_openai/oai_client.h plugins/stt_openai/transcript.c plugins/stt_openai/transcript.h \
	plugins/tts_openai/pcm.c plugins/tts_openai/pcm.h
FUZZ_CPP_oai_body = -I$(top_srcdir)/plugins/llm_openai -I$(top_srcdir)/plugins/stt_openai \
	-I$(top_srcdir)/plugins/tts_openai $(CURL_CFLAGS) $(JANSSON_CFLAGS)
FUZZ_LIBS_oai_body = $(CURL_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm
FUZZ_MAXLEN_oai_body = 4096

# WAV files given to the tools (tools/wav.c).
FUZZ_SRC_wav = tests/fuzz/fuzz_wav.c tools/wav.c tools/wav.h
FUZZ_CPP_wav = -I$(top_srcdir)/tools
FUZZ_LIBS_wav =
FUZZ_MAXLEN_wav = 4096

# The configuration file through parsing and validation (host/base/cfg.c on inih,
# host/settings.c, then client limits and ACLs as main.c configures them).
FUZZ_SRC_cfg = tests/fuzz/fuzz_cfg.c host/base/cfg.c host/base/cfg.h host/settings.c host/settings.h \
	host/base/acl.c host/base/acl.h host/net/client_limits.c host/net/client_limits.h host/base/log.c host/base/log.h \
	metrics/metrics.c metrics/metrics.h
FUZZ_CPP_cfg = $(INIH_CFLAGS) $(JANSSON_CFLAGS)
FUZZ_LIBS_cfg = $(INIH_LIBS) $(JANSSON_LIBS) $(PTHREAD_LIBS) -lm
FUZZ_MAXLEN_cfg = 8192

# The request-head peek of the front (host/net/front.c, compiled into the target
# itself to reach front_peek; head.c gives the reference header reading).
FUZZ_SRC_front = tests/fuzz/fuzz_front.c host/net/front.h host/net/head.c host/net/head.h host/net/peers.c host/net/peers.h
FUZZ_CPP_front =
FUZZ_LIBS_front = $(PTHREAD_LIBS)
FUZZ_MAXLEN_front = 4096

# The WebSocket upgrade head as /v1/realtime reads it (ws_upgrade of
# host/net/ws.c, compiled into the target, with stubs for the HTTP server and
# the sessions), with real auth and client limits.
FUZZ_SRC_upgrade = tests/fuzz/fuzz_upgrade.c host/net/ws.h host/net/head.c host/net/head.h host/net/auth.c host/net/auth.h \
	host/net/client_limits.c host/net/client_limits.h host/base/acl.c host/base/acl.h host/settings.c host/settings.h \
	host/base/cfg.c host/base/cfg.h host/base/log.c host/base/log.h host/session/persist_state.c host/session/persist.h \
	host/session/conversation.c host/session/protocol.c host/session/protocol.h metrics/metrics.c metrics/metrics.h
FUZZ_CPP_upgrade = $(LWS_CFLAGS) $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS) $(INIH_CFLAGS)
FUZZ_LIBS_upgrade = $(LWS_LIBS) $(EV_LIBS) $(JANSSON_LIBS) $(CRYPTO_LIBS) $(INIH_LIBS) $(PTHREAD_LIBS) -lm
FUZZ_MAXLEN_upgrade = 8192

# A session's state as read back from the session store (host/session/persist_state.c
# over host/session/conversation.c).
FUZZ_SRC_session_state = tests/fuzz/fuzz_session_state.c host/session/persist_state.c host/session/persist.h \
	host/session/conversation.c host/session/session_int.h host/session/protocol.c host/session/protocol.h
FUZZ_CPP_session_state = $(JANSSON_CFLAGS) $(CRYPTO_CFLAGS)
FUZZ_LIBS_session_state = $(JANSSON_LIBS) $(CRYPTO_LIBS) -lm
FUZZ_MAXLEN_session_state = 8192

# Redis replies through hiredis' reader into store_redis' reading of them
# (plugins/store_redis/reply.c).
FUZZ_SRC_redis = tests/fuzz/fuzz_redis.c plugins/store_redis/reply.c plugins/store_redis/reply.h
FUZZ_CPP_redis = -I$(top_srcdir)/plugins/store_redis $(HIREDIS_CFLAGS)
FUZZ_LIBS_redis = $(HIREDIS_LIBS)
FUZZ_MAXLEN_redis = 4096

# The event type voxray-loadtest reads off the head of a server message
# without parsing it (tools/lt_scan.c).
FUZZ_SRC_lt_scan = tests/fuzz/fuzz_lt_scan.c tools/lt_scan.c tools/lt_scan.h
FUZZ_CPP_lt_scan = -I$(top_srcdir)/tools
FUZZ_LIBS_lt_scan =
FUZZ_MAXLEN_lt_scan = 1024

# SDP offers of POST /v1/realtime/calls, as checked before the WebRTC stack
# sees them (host/net/sdp_check.c).
FUZZ_SRC_sdp = tests/fuzz/fuzz_sdp.c host/net/sdp_check.c host/net/sdp_check.h
FUZZ_CPP_sdp =
FUZZ_LIBS_sdp =
FUZZ_MAXLEN_sdp = 8192

# ---- make check: replay builds.
FUZZ_REPLAYS = tests/fuzz/fuzz_protocol tests/fuzz/fuzz_sse tests/fuzz/fuzz_llm_stream tests/fuzz/fuzz_oai_body \
	tests/fuzz/fuzz_wav tests/fuzz/fuzz_cfg \
	tests/fuzz/fuzz_front tests/fuzz/fuzz_upgrade tests/fuzz/fuzz_session_state \
	tests/fuzz/fuzz_redis tests/fuzz/fuzz_lt_scan tests/fuzz/fuzz_sdp
check_PROGRAMS += $(FUZZ_REPLAYS)
TESTS += $(FUZZ_REPLAYS)

tests_fuzz_fuzz_protocol_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_protocol)
tests_fuzz_fuzz_protocol_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"protocol"' $(FUZZ_CPP_protocol)
tests_fuzz_fuzz_protocol_LDADD = $(FUZZ_LIBS_protocol)

tests_fuzz_fuzz_sse_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_sse)
tests_fuzz_fuzz_sse_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"sse"' $(FUZZ_CPP_sse)
tests_fuzz_fuzz_sse_LDADD = $(FUZZ_LIBS_sse)

tests_fuzz_fuzz_llm_stream_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_llm_stream)
tests_fuzz_fuzz_llm_stream_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"llm_stream"' $(FUZZ_CPP_llm_stream)
tests_fuzz_fuzz_llm_stream_LDADD = $(FUZZ_LIBS_llm_stream)

tests_fuzz_fuzz_oai_body_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_oai_body)
tests_fuzz_fuzz_oai_body_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"oai_body"' $(FUZZ_CPP_oai_body)
tests_fuzz_fuzz_oai_body_LDADD = $(FUZZ_LIBS_oai_body)

tests_fuzz_fuzz_wav_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_wav)
tests_fuzz_fuzz_wav_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"wav"' $(FUZZ_CPP_wav)
tests_fuzz_fuzz_wav_LDADD = $(FUZZ_LIBS_wav)

tests_fuzz_fuzz_cfg_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_cfg)
tests_fuzz_fuzz_cfg_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"cfg"' $(FUZZ_CPP_cfg)
tests_fuzz_fuzz_cfg_LDADD = $(FUZZ_LIBS_cfg)

tests_fuzz_fuzz_front_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_front)
tests_fuzz_fuzz_front_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"front"' $(FUZZ_CPP_front)
tests_fuzz_fuzz_front_LDADD = $(FUZZ_LIBS_front)

tests_fuzz_fuzz_upgrade_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_upgrade)
tests_fuzz_fuzz_upgrade_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"upgrade"' $(FUZZ_CPP_upgrade)
tests_fuzz_fuzz_upgrade_LDADD = $(FUZZ_LIBS_upgrade)

tests_fuzz_fuzz_session_state_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_session_state)
tests_fuzz_fuzz_session_state_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"session_state"' \
	$(FUZZ_CPP_session_state)
tests_fuzz_fuzz_session_state_LDADD = $(FUZZ_LIBS_session_state)

tests_fuzz_fuzz_redis_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_redis)
tests_fuzz_fuzz_redis_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"redis"' $(FUZZ_CPP_redis)
tests_fuzz_fuzz_redis_LDADD = $(FUZZ_LIBS_redis)

tests_fuzz_fuzz_lt_scan_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_lt_scan)
tests_fuzz_fuzz_lt_scan_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"lt_scan"' $(FUZZ_CPP_lt_scan)
tests_fuzz_fuzz_lt_scan_LDADD = $(FUZZ_LIBS_lt_scan)

tests_fuzz_fuzz_sdp_SOURCES = tests/fuzz/replay.c $(FUZZ_SRC_sdp)
tests_fuzz_fuzz_sdp_CPPFLAGS = $(FUZZ_REPLAY_CPPFLAGS) -DFUZZ_NAME='"sdp"' $(FUZZ_CPP_sdp)
tests_fuzz_fuzz_sdp_LDADD = $(FUZZ_LIBS_sdp)

EXTRA_DIST += tests/fuzz/fuzz.sh tests/fuzz/corpus tests/fuzz/regressions

# ---- make fuzz: clang builds, run one after the other.
.PHONY: fuzz
fuzz:
	@$(SHELL) $(top_srcdir)/tests/fuzz/fuzz.sh check '$(FUZZ_CC)'
	@rm -f $(FUZZ_OUT)/summary.txt
	@$(foreach t,$(FUZZ_TARGETS),$(SHELL) $(top_srcdir)/tests/fuzz/fuzz.sh run $(t) \
	  $(FUZZ_MAXLEN_$(t)) $(FUZZ_SECONDS) $(top_srcdir) $(FUZZ_OUT) $(FUZZ_CC) \
	  $(FUZZ_CLANG_FLAGS) -I$(top_builddir) $(AM_CPPFLAGS) $(FUZZ_CPP_$(t)) \
	  $(addprefix $(top_srcdir)/,$(filter %.c,$(FUZZ_SRC_$(t)))) $(FUZZ_LIBS_$(t)) || exit 1;)
	@echo "== make fuzz: $(FUZZ_SECONDS)s per target"
	@cat $(FUZZ_OUT)/summary.txt

clean-local: fuzz-clean
fuzz-clean:
	-rm -rf $(FUZZ_OUT)
.PHONY: fuzz-clean
