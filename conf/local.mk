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
EXTRA_DIST += conf/prometheus/voxray-alerts.yml conf/prometheus/voxray-alerts_test.yml conf/examples/sim.ini conf/examples/fallback.ini conf/examples/openai.ini conf/examples/recording-s3.ini
