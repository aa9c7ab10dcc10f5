# plugins/store_redis/local.mk
pkglib_LTLIBRARIES += plugins/store_redis/store_redis.la
plugins_store_redis_store_redis_la_SOURCES = plugins/store_redis/store_redis.c \
	plugins/store_redis/reply.c plugins/store_redis/reply.h
plugins_store_redis_store_redis_la_CFLAGS = $(VX_PLUGIN_CC) $(HIREDIS_CFLAGS)
plugins_store_redis_store_redis_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_store_redis_store_redis_la_LIBADD = $(HIREDIS_LIBS) $(PTHREAD_LIBS)
