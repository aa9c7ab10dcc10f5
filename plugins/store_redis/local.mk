# plugins/store_redis/local.mk
