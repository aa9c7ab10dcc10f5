# plugins/rec_s3/local.mk: the S3 recording sink.
