"""U-ViT text-to-image (baofff/U-ViT libs/uvit_t2i.py, the MS-COCO models): checkpoint.py
(converter knowledge, torch-free), reference.py (the PyTorch model), fixtures.py (the test
fixture configs)."""
