# tests/node/local.mk
