# One folder per plugin; each has its own local.mk.
include $(srcdir)/plugins/store_memory/local.mk
include $(srcdir)/plugins/store_redis/local.mk
include $(srcdir)/plugins/sim/local.mk
