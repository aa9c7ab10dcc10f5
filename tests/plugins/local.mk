# tests/plugins/local.mk
