"""dasm: dataset distillation with Difficulty-Aligned Sequential Matching."""
__version__ = "0.1.0"
