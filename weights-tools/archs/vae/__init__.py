"""Stable Diffusion KL-f8 VAE decoder: checkpoint.py (converter knowledge, torch-free),
reference.py (the PyTorch model), fixtures.py (the test fixture configs)."""
