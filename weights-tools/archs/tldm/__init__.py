"""In-context transformer LDM (Chahal, arXiv 2212.14678): checkpoint.py (converter knowledge,
torch-free), reference.py (the PyTorch model), fixtures.py (the test fixture configs)."""
