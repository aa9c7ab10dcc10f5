# metrics/local.mk
