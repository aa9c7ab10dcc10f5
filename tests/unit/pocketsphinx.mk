# tests/unit/pocketsphinx.mk
