"""Training: the loop (loop.py), losses, distributed setup, experiment tracking."""
