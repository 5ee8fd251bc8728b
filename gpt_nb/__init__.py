"""Build a GPT from scratch, one notebook at a time: tokenizer, attention, model, generation, training and attention analysis."""

__version__ = "0.2.0"
