# plugins/llm_eliza/local.mk: ELIZA (Weizenbaum 1966) as an offline LLM
# provider. The DOCTOR script is installed as a data file to copy and edit,
# and compiled into the module from the same doctor.txt so the module needs
# no file at run time.
pkglib_LTLIBRARIES += plugins/llm_eliza/llm_eliza.la
plugins_llm_eliza_llm_eliza_la_SOURCES = plugins/llm_eliza/llm_eliza.c \
	plugins/llm_eliza/eliza.h plugins/llm_eliza/eliza_script.c \
	plugins/llm_eliza/eliza_engine.c plugins/llm_eliza/eliza_sessions.c
nodist_plugins_llm_eliza_llm_eliza_la_SOURCES = plugins/llm_eliza/doctor_txt.c
plugins_llm_eliza_llm_eliza_la_CFLAGS = $(VX_PLUGIN_CC)
plugins_llm_eliza_llm_eliza_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_llm_eliza_llm_eliza_la_LIBADD = $(PTHREAD_LIBS) -lm

llm_elizadir = $(pkgdatadir)
dist_llm_eliza_DATA = plugins/llm_eliza/doctor.txt

# doctor.txt as one C string, a line per string literal; only '\' and '"'
# need escaping. Written to a temporary name first so an interrupted build
# leaves no half file behind.
CLEANFILES += plugins/llm_eliza/doctor_txt.c
plugins/llm_eliza/doctor_txt.c: $(srcdir)/plugins/llm_eliza/doctor.txt
	$(AM_V_GEN)$(MKDIR_P) plugins/llm_eliza && { \
	  echo '/* doctor.txt as a C string; rebuilt from it by plugins/llm_eliza/local.mk. */'; \
	  echo 'extern const char eliza_doctor_txt[];'; \
	  echo 'const char eliza_doctor_txt[] ='; \
	  $(AWK) '{ s = ""; for (i = 1; i <= length($$0); i++) { c = substr($$0, i, 1); \
	    if (c == "\\" || c == "\"") s = s "\\"; s = s c } print "    \"" s "\\n\"" }' \
	    $(srcdir)/plugins/llm_eliza/doctor.txt; \
	  echo '    ;'; } > $@-t && mv -f $@-t $@
