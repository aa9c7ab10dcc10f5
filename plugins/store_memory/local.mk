# plugins/store_memory/local.mk
pkglib_LTLIBRARIES += plugins/store_memory/store_memory.la
plugins_store_memory_store_memory_la_SOURCES = plugins/store_memory/store_memory.c
plugins_store_memory_store_memory_la_CFLAGS = $(VX_PLUGIN_CC)
plugins_store_memory_store_memory_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_store_memory_store_memory_la_LIBADD = $(PTHREAD_LIBS)
