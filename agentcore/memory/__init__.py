"""Core memory blocks, prompt compilation, token budgeting and summarisation."""
