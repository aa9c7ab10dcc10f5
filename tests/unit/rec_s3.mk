# tests/unit/rec_s3.mk: the S3 recording sink against a signature-checking S3 server.
