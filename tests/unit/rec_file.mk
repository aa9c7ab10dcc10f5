# tests/unit/rec_file.mk: the file recording sink.
