# plugins/sim/local.mk
