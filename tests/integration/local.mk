# Integration tests: the real daemon, real servers on loopback.
check_PROGRAMS += tests/tools/freeport
tests_tools_freeport_SOURCES = tests/tools/freeport.c
check_PROGRAMS += tests/tools/slowloris
tests_tools_slowloris_SOURCES = tests/tools/slowloris.c

VX_INTEGRATION_TESTS = \
	tests/integration/config_cli.sh \
	tests/integration/plugins_cli.sh \
	tests/integration/http_probes.sh \
	tests/integration/slowloris.sh \
	tests/integration/logging.sh \
	tests/integration/promtool.sh \
	tests/integration/redis_ready.sh \
	tests/integration/client_e2e.sh \
	tests/integration/offline_e2e.sh \
	tests/integration/openai_e2e.sh \
	tests/integration/reload.sh \
	tests/integration/prometheus.sh \
	tests/integration/sdk.sh \
	tests/integration/recording.sh \
	tests/integration/recording_s3.sh \
	tests/integration/loadtest.sh \
	tests/integration/grafana.sh \
	tests/integration/ops_proxy.sh \
	tests/integration/man_pages.sh \
	tests/integration/k8s.sh \
	tests/integration/container.sh \
	tests/integration/install.sh \
	tests/integration/webrtc_aiortc.sh
TESTS += $(VX_INTEGRATION_TESTS)
dist_noinst_SCRIPTS += $(VX_INTEGRATION_TESTS) tests/integration/lib.sh tests/integration/webrtc_aiortc.py

# The shell tests drive the built daemon and plugins (and the test plugins).
$(VX_INTEGRATION_TESTS:.sh=.log): voxray tests/tools/freeport$(EXEEXT) tests/tools/slowloris$(EXEEXT) tests/tools/mock_openai$(EXEEXT) tools/voxray-client$(EXEEXT) tools/voxray-loadtest$(EXEEXT) $(pkglib_LTLIBRARIES) $(VX_TEST_PLUGINS) plugins-built
