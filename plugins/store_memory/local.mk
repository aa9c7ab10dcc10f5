# plugins/store_memory/local.mk
