# plugins/llm_openai/local.mk
