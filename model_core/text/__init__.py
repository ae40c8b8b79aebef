"""CLIP's text side: the BPE tokenizer, the text tower, and a reader for OpenAI's TorchScript file
that never runs code from it."""
