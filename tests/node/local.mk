# Protocol tests: real WebSocket clients (npm ws, the openai SDK) against the
# built daemon on loopback. Each file is run by tests/node/run with node:test
# TAP output; npm packages live in tests/node/node_modules (package.json).
VX_NODE_TESTS = \
	tests/node/realtime.test.mjs \
	tests/node/bad_input.test.mjs \
	tests/node/resilience.test.mjs \
	tests/node/openai_sdk.test.mjs \
	tests/node/demo_page.test.mjs \
	tests/node/resume.test.mjs \
	tests/node/recording.test.mjs \
	tests/node/response_options.test.mjs \
	tests/node/semantic_vad.test.mjs \
	tests/node/speculative.test.mjs \
	tests/node/tools.test.mjs \
	tests/node/clients.test.mjs \
	tests/node/auth.test.mjs \
	tests/node/threads.test.mjs \
	tests/node/memory.test.mjs \
	tests/node/webrtc.test.mjs \
	tests/node/agents_webrtc.test.mjs \
	tests/node/reload.test.mjs \
	tests/node/reload_sinks.test.mjs \
	tests/node/fleet.test.mjs
TESTS += $(VX_NODE_TESTS)
EXTRA_DIST += $(VX_NODE_TESTS) tests/node/lib.mjs tests/node/run \
	tests/node/package.json tests/node/package-lock.json

# The tests start the built daemon with the built plugins.
$(VX_NODE_TESTS:.mjs=.log): voxray $(pkglib_LTLIBRARIES) plugins-built $(VX_TEST_PLUGINS)
CLEANFILES += tests/node/demo_page-*.png
