"""DiT (Peebles & Xie, arXiv 2212.09748): checkpoint.py (converter knowledge, torch-free),
reference.py (the PyTorch model), fixtures.py (the test fixture configs)."""
