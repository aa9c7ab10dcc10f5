# plugins/llm_eliza/local.mk
