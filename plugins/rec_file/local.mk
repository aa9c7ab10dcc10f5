# plugins/rec_file/local.mk: the local-folder recording sink.
pkglib_LTLIBRARIES += plugins/rec_file/rec_file.la
plugins_rec_file_rec_file_la_SOURCES = plugins/rec_file/rec_file.c
plugins_rec_file_rec_file_la_CFLAGS = $(VX_PLUGIN_CC)
plugins_rec_file_rec_file_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_rec_file_rec_file_la_LIBADD = $(PTHREAD_LIBS)
