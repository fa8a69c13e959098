"""Image-space DiffiT (arXiv 2312.02139 Sec. 3.2.1, ditrt's layout): checkpoint.py (config and key
list, torch-free; not a convert.py arch), reference.py (the PyTorch model), fixtures.py (the test
fixture configs)."""
