# Tests: unit (cmocka), integration (shell, real servers on loopback),
# test plugins and benchmarks. Each piece keeps its rules in its own .mk.
include $(srcdir)/tests/unit/metrics.mk
include $(srcdir)/tests/unit/loader.mk
include $(srcdir)/tests/unit/front.mk
include $(srcdir)/tests/unit/auth.mk
include $(srcdir)/tests/unit/store.mk
include $(srcdir)/tests/unit/local.mk
include $(srcdir)/tests/unit/audio.mk
include $(srcdir)/tests/unit/protocol.mk
include $(srcdir)/tests/unit/sim.mk
include $(srcdir)/tests/unit/pocketsphinx.mk
include $(srcdir)/tests/unit/tts_local.mk
include $(srcdir)/tests/unit/eliza.mk
include $(srcdir)/tests/unit/openai.mk
include $(srcdir)/tests/unit/rec_file.mk
include $(srcdir)/tests/unit/rec_s3.mk
include $(srcdir)/tests/fuzz/local.mk
include $(srcdir)/tests/plugins/local.mk
include $(srcdir)/tests/bench/local.mk
include $(srcdir)/tests/integration/local.mk
include $(srcdir)/tests/node/local.mk

# Sanitizer run (./quickstart.sh test-asan): LeakSanitizer suppressions.
EXTRA_DIST += tests/sanitizers/lsan.supp
