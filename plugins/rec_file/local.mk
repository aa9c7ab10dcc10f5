# plugins/rec_file/local.mk: the local-folder recording sink.
