"""In-context transformer LDM (arXiv 2212.14678; no public code): presets, key list, config
inference from checkpoint shapes. Torch-free.

ditrt's choices (README.md, "In-context transformer LDM: our choices"): DiT's sizes, config
fields, patch/time/class embedders and key names; [time, class, patches] in one sequence
through timm pre-LN blocks (qkv bias, tanh GELU, LN eps 1e-6); `final_layer.norm_final` (affine
LN) and `final_layer.linear` on the patch tokens; learned sigma. With `context_dim`, a text
context's 77 tokens through `context_embedder` (Linear context_dim -> D with bias) follow the
class token: [time, class, context..., patches].
"""

from archs import ConvertError, preset_entry, shape_of
from archs.dit import checkpoint as dit

PRESETS = {name.replace("DiT-", "TLDM-"): p for name, p in dit.PRESETS.items()}


def make_config(input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                mlp_ratio=4.0, num_classes=1000, learn_sigma=True, context_dim=None):
    """The `ditrt.config` JSON object: DiT's fields under arch "tldm", and `context_dim` only for
    a model with a text context."""
    cfg = dict(dit.make_config(input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                               mlp_ratio, num_classes, learn_sigma), arch="tldm")
    if context_dim is not None:
        cfg["context_dim"] = int(context_dim)
    return cfg


def expected_shapes(cfg):
    """Key -> shape for a config, in module order."""
    d, c, p = cfg["hidden_size"], cfg["in_channels"], cfg["patch_size"]
    hidden = int(d * cfg["mlp_ratio"])
    out_channels = 2 * c if cfg["learn_sigma"] else c
    shapes = dit.embedder_shapes(cfg)
    if "context_dim" in cfg:
        shapes["context_embedder.weight"] = (d, cfg["context_dim"])
        shapes["context_embedder.bias"] = (d,)
    for i in range(cfg["depth"]):
        b = f"blocks.{i}"
        for name, shape in [("norm1", (d,)), ("attn.qkv", (3 * d, d)), ("attn.proj", (d, d)), ("norm2", (d,)),
                            ("mlp.fc1", (hidden, d)), ("mlp.fc2", (d, hidden))]:
            shapes[f"{b}.{name}.weight"] = shape
            shapes[f"{b}.{name}.bias"] = shape[:1]
    shapes["final_layer.norm_final.weight"] = (d,)
    shapes["final_layer.norm_final.bias"] = (d,)
    shapes["final_layer.linear.weight"] = (p * p * out_channels, d)
    shapes["final_layer.linear.bias"] = (p * p * out_channels,)
    return shapes


def infer_config(shapes, num_heads=None, preset=None):
    """DiT's dimensions from the same keys, the context width from `context_embedder` (where
    present); heads from --num-heads, the preset or the width."""
    context_dim = None
    if "context_embedder.weight" in shapes:
        context_dim = shape_of(shapes, "context_embedder.weight", 2, "TLDM")[1]
    if preset is None:
        return make_config(**_fields(dit.infer_config(shapes, num_heads=num_heads)), context_dim=context_dim)
    want = preset_entry(PRESETS, preset, num_heads)
    # dimensions first, heads below
    cfg = make_config(**_fields(dit.infer_config(shapes, num_heads=1)), context_dim=context_dim)
    for name, value in want.items():
        if name != "num_heads" and cfg[name] != value:
            raise ConvertError(f"--preset {preset}: checkpoint has {name} {cfg[name]}, preset has {value}")
    return dict(cfg, num_heads=want["num_heads"])


def _fields(cfg):
    return {k: v for k, v in cfg.items() if k != "arch"}
