# tests/unit/metrics.mk
