"""Bundle-MLLM: a causal LLM fine-tuned with LoRA to answer "which candidate completes this bundle?".

``llm`` holds the backbone utilities (resolving/loading the LLM, LoRA, answer letters, a tiny test model).
"""
