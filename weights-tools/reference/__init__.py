"""PyTorch reference models for ditrt (used to make test fixtures; never needed at run time).

Each backbone is written from its paper, with parameter names equal to the keys of the official
released checkpoints, and computes in whatever dtype its parameters have (float64 for fixtures).
"""
