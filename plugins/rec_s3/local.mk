# plugins/rec_s3/local.mk: the S3 recording sink (libcurl signs with SigV4,
# libcrypto hashes the payloads).
pkglib_LTLIBRARIES += plugins/rec_s3/rec_s3.la
plugins_rec_s3_rec_s3_la_SOURCES = plugins/rec_s3/rec_s3.c
plugins_rec_s3_rec_s3_la_CFLAGS = $(VX_PLUGIN_CC) $(CURL_CFLAGS) $(CRYPTO_CFLAGS)
plugins_rec_s3_rec_s3_la_LDFLAGS = $(VX_PLUGIN_LINK)
plugins_rec_s3_rec_s3_la_LIBADD = $(CURL_LIBS) $(CRYPTO_LIBS) $(PTHREAD_LIBS)
