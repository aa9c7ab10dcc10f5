voxrayconfdir = $(sysconfdir)/voxray
dist_voxrayconf_DATA = conf/voxray.ini

# The build tree's plugins in one folder, so tests and developers can point
# [server] plugin_dir at $(top_builddir)/plugins/.built without installing.
all-local: plugins-built
plugins-built: $(pkglib_LTLIBRARIES)
	@$(MKDIR_P) $(top_builddir)/plugins/.built
	@for la in $(pkglib_LTLIBRARIES); do \
	  so=`dirname $$la`/.libs/`basename $$la .la`.so; \
	  ln -sf $(abs_top_builddir)/$$so $(top_builddir)/plugins/.built/; \
	done
clean-local:
	-rm -rf $(top_builddir)/plugins/.built
.PHONY: plugins-built
EXTRA_DIST += conf/examples/sim.ini conf/examples/fallback.ini conf/examples/openai.ini conf/examples/recording-s3.ini

# Operator kit: Grafana dashboards and provisioning, Prometheus scrape
# config and alert rules under $(datadir)/voxray.
grafanadashdir = $(pkgdatadir)/grafana/dashboards
dist_grafanadash_DATA = conf/grafana/dashboards/voxray-overview.json \
	conf/grafana/dashboards/voxray-latency.json \
	conf/grafana/dashboards/voxray-throughput.json \
	conf/grafana/dashboards/voxray-providers.json \
	conf/grafana/dashboards/voxray-recording.json \
	conf/grafana/dashboards/voxray-users.json
grafanadsdir = $(pkgdatadir)/grafana/provisioning/datasources
dist_grafanads_DATA = conf/grafana/provisioning/datasources/voxray.yaml
grafanaprovdir = $(pkgdatadir)/grafana/provisioning/dashboards
dist_grafanaprov_DATA = conf/grafana/provisioning/dashboards/voxray.yaml
promconfdir = $(pkgdatadir)/prometheus
dist_promconf_DATA = conf/prometheus/prometheus.yml conf/prometheus/voxray-alerts.yml \
	conf/prometheus/voxray-alerts_test.yml
nginxconfdir = $(pkgdatadir)/nginx
dist_nginxconf_DATA = conf/nginx/voxray.conf
systemdunitdir = $(pkgdatadir)/systemd
systemdunit_DATA = conf/systemd/voxray.service
EXTRA_DIST += conf/systemd/voxray.service.in
CLEANFILES += conf/systemd/voxray.service
conf/systemd/voxray.service: $(srcdir)/conf/systemd/voxray.service.in Makefile
	@$(MKDIR_P) conf/systemd
	$(AM_V_GEN)sed -e 's|@bindir[@]|$(bindir)|g' -e 's|@sysconfdir[@]|$(sysconfdir)|g' \
		$(srcdir)/conf/systemd/voxray.service.in >$@

# Man pages: voxray(8), voxray.ini(5), voxray-client(1).
dist_man_MANS = man/voxray.8 man/voxray.ini.5 man/voxray-client.1

# Kubernetes manifests (kubectl apply -k $(pkgdatadir)/k8s).
k8sdir = $(pkgdatadir)/k8s
dist_k8s_DATA = conf/k8s/kustomization.yaml conf/k8s/namespace.yaml conf/k8s/configmap.yaml \
	conf/k8s/secret-s3.yaml conf/k8s/deployment.yaml conf/k8s/service.yaml conf/k8s/pdb.yaml \
	conf/k8s/hpa.yaml conf/k8s/servicemonitor.yaml conf/k8s/podmonitor.yaml \
	conf/k8s/prometheusrule.yaml conf/k8s/redis.yaml
