"""CLIP text encoder (transformers' CLIPTextModel): checkpoint.py (converter knowledge,
torch-free), vocab.py (CLIP's BPE vocabulary), reference.py (the PyTorch model), fixtures.py
(the test fixture configs)."""
