"""U-ViT (Bao et al., arXiv 2209.12152): checkpoint.py (converter knowledge, torch-free),
reference.py (the PyTorch model), fixtures.py (the test fixture configs)."""
