"""Latent DiffiT (Hatamizadeh et al., arXiv 2312.02139): checkpoint.py (converter knowledge,
torch-free), reference.py (the PyTorch model), fixtures.py (the test fixture configs)."""
