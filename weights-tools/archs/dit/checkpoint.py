"""DiT (arXiv 2212.09748): presets, config inference from official checkpoint shapes, key list,
diffusers' DiTTransformer2DModel layout and its config.json.

Torch-free, so convert.py can handle safetensors inputs without PyTorch.
"""

import math
import re

import numpy as np

from archs import ConfigJson, ConvertError, from_command_line, heads_for, shape_of

# depth / width / heads of the paper's Table 1, times patch sizes 2, 4, 8 ("DiT-XL/2", ...).
_SIZES = {"S": (12, 384, 6), "B": (12, 768, 12), "L": (24, 1024, 16), "XL": (28, 1152, 16)}
PRESETS = {
    f"DiT-{name}/{p}": {"depth": d, "hidden_size": w, "num_heads": h, "patch_size": p}
    for name, (d, w, h) in _SIZES.items()
    for p in (2, 4, 8)
}
# Official head count by width, used when neither --num-heads nor --preset says.
DEFAULT_HEADS = {w: h for (_, w, h) in _SIZES.values()}

FREQ_DIM = 256  # timestep feature width of the official TimestepEmbedder
# diffusers' classes of a DiT (Transformer2DModel: before diffusers 0.28, with norm_type ada_norm_zero)
DIFFUSERS_CLASSES = ("DiTTransformer2DModel", "Transformer2DModel")


def make_config(input_size, patch_size, in_channels, hidden_size, depth, num_heads,
                mlp_ratio=4.0, num_classes=1000, learn_sigma=True):
    """The `ditrt.config` JSON object, keys in the order the Rust side documents."""
    return {
        "arch": "dit",
        "input_size": int(input_size),
        "patch_size": int(patch_size),
        "in_channels": int(in_channels),
        "hidden_size": int(hidden_size),
        "depth": int(depth),
        "num_heads": int(num_heads),
        "mlp_ratio": float(mlp_ratio),
        "num_classes": int(num_classes),
        "learn_sigma": bool(learn_sigma),
    }


def embedder_shapes(cfg):
    """The leading keys: pos_embed and the patch, timestep and class embedders (TLDM's and the
    latent DiffiT's too)."""
    d, c, p = cfg["hidden_size"], cfg["in_channels"], cfg["patch_size"]
    grid = cfg["input_size"] // p
    return {
        "pos_embed": (1, grid * grid, d),
        "x_embedder.proj.weight": (d, c, p, p),
        "x_embedder.proj.bias": (d,),
        "t_embedder.mlp.0.weight": (d, FREQ_DIM),
        "t_embedder.mlp.0.bias": (d,),
        "t_embedder.mlp.2.weight": (d, d),
        "t_embedder.mlp.2.bias": (d,),
        "y_embedder.embedding_table.weight": (cfg["num_classes"] + 1, d),
    }


def expected_shapes(cfg):
    """Official key -> shape for a config, in the official module order."""
    d, c, p = cfg["hidden_size"], cfg["in_channels"], cfg["patch_size"]
    hidden = int(d * cfg["mlp_ratio"])  # official Mlp: int(hidden_size * mlp_ratio)
    out_channels = 2 * c if cfg["learn_sigma"] else c
    shapes = embedder_shapes(cfg)
    for i in range(cfg["depth"]):
        for name, shape in [("attn.qkv", (3 * d, d)), ("attn.proj", (d, d)),
                            ("mlp.fc1", (hidden, d)), ("mlp.fc2", (d, hidden)),
                            ("adaLN_modulation.1", (6 * d, d))]:
            shapes[f"blocks.{i}.{name}.weight"] = shape
            shapes[f"blocks.{i}.{name}.bias"] = shape[:1]
    shapes["final_layer.linear.weight"] = (p * p * out_channels, d)
    shapes["final_layer.linear.bias"] = (p * p * out_channels,)
    shapes["final_layer.adaLN_modulation.1.weight"] = (2 * d, d)
    shapes["final_layer.adaLN_modulation.1.bias"] = (2 * d,)
    return shapes


def infer_config(shapes, num_heads=None, preset=None, config_json=None):
    """Read every config value off the tensor shapes (diffusers' config.json must agree); heads
    from --num-heads / the preset, else config.json (num_attention_heads), else by width."""
    cj = config_json or ConfigJson()
    shape = lambda key, ndim: shape_of(shapes, key, ndim, "DiT")  # noqa: E731
    d, c, p, p2 = shape("x_embedder.proj.weight", 4)
    if p != p2:
        raise ConvertError(f"key 'x_embedder.proj.weight': expected a square p x p kernel, found {p}x{p2}")

    n = shape("pos_embed", 3)[1]
    grid = math.isqrt(n)
    if grid * grid != n:
        raise ConvertError(f"key 'pos_embed': {n} tokens is not a square patch grid")

    num_classes = shape("y_embedder.embedding_table.weight", 2)[0] - 1
    fc1_rows = shape("blocks.0.mlp.fc1.weight", 2)[0]
    mlp_ratio = fc1_rows / d
    if int(d * mlp_ratio) != fc1_rows:  # the MLP width must round-trip through the ratio
        raise ConvertError(f"key 'blocks.0.mlp.fc1.weight': {fc1_rows} rows is not int({d} * mlp_ratio)")

    rows = shape("final_layer.linear.weight", 2)[0]
    if rows == p * p * 2 * c:
        learn_sigma = True
    elif rows == p * p * c:
        learn_sigma = False
    else:
        raise ConvertError(f"key 'final_layer.linear.weight': expected {p * p * c} or {p * p * 2 * c} "
                           f"rows (p*p*C or p*p*2C), found {rows}")

    blocks = {int(m.group(1)) for k in shapes if (m := re.match(r"blocks\.(\d+)\.", k))}
    depth = max(blocks) + 1  # a gap in the numbering is then reported as a missing key

    h, hd = cj.get("num_attention_heads"), cj.get("attention_head_dim")
    if h is not None and hd is not None:
        cj.agree("attention_head_dim", d, "x_embedder.proj.weight", value=h * hd,
                 says=f"num_attention_heads {h!r} x attention_head_dim {hd!r} = {h * hd}")
    cj.agree("patch_size", p, "x_embedder.proj.weight")
    cj.agree("in_channels", c, "x_embedder.proj.weight")
    cj.agree("out_channels", 2 * c if learn_sigma else c, "final_layer.linear.weight",
             value=cj.get("out_channels") or cj.get("in_channels"))  # diffusers: None means in_channels
    cj.agree("num_embeds_ada_norm", num_classes, "y_embedder.embedding_table.weight")
    cj.agree("num_layers", depth, "blocks.*")
    cj.agree("sample_size", grid * p, "pos_embed", value=cj.side("sample_size"))

    if preset is not None:
        if preset not in PRESETS:
            raise ConvertError(f"unknown --preset {preset!r} (known: {', '.join(PRESETS)})")
        want = PRESETS[preset]
        found = {"depth": depth, "hidden_size": d, "patch_size": p}
        for name, value in found.items():
            if value != want[name]:
                raise ConvertError(f"--preset {preset}: checkpoint has {name} {value}, preset has {want[name]}")
    num_heads, _ = cj.pick("num_heads", "num_attention_heads", None,
                           from_command_line("num_heads", "--num-heads", num_heads, preset, PRESETS), None)
    num_heads = heads_for(num_heads, d, DEFAULT_HEADS, "hidden size")

    return make_config(grid * p, p, c, d, depth, num_heads, mlp_ratio, num_classes, learn_sigma)


# --- diffusers DiTTransformer2DModel layout -------------------------------------------------

_DIFFUSERS_EMB = "transformer_blocks.{i}.norm1.emb."
_DIFFUSERS_BLOCK = {  # per-block diffusers module -> official module
    "norm1.linear": "adaLN_modulation.1",
    "attn1.to_out.0": "attn.proj",
    "ff.net.0.proj": "mlp.fc1",
    "ff.net.2": "mlp.fc2",
}
_DIFFUSERS_TOP = {
    "pos_embed.proj": "x_embedder.proj",
    "proj_out_1": "final_layer.adaLN_modulation.1",
    "proj_out_2": "final_layer.linear",
}
_DIFFUSERS_NOTE = ("mapped diffusers' DiTTransformer2DModel layout to the official DiT keys; diffusers computes "
                   "timestep features with frequency shift 1 (exp(-ln(10000) i/(half-1))) while ditrt follows the "
                   "official DiT (i/half), so outputs match the official model, not diffusers' pipeline to the last digit "
                   "(likewise diffusers' MLP LayerNorm eps is its norm_eps, default 1e-5; ditrt uses the official 1e-6)")


def sincos_2d_np(dim, grid):
    """numpy copy of reference/common.py sincos_2d (float64, (grid*grid, dim)); kept torch-free."""
    if dim % 4:
        raise ConvertError(f"hidden size {dim}: the 2-D sin-cos position table needs a multiple of 4")
    omega = 10000.0 ** (-np.arange(dim // 4, dtype=np.float64) / (dim / 4))
    h, w = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")

    def one(pos):
        args = pos.reshape(-1).astype(np.float64)[:, None] * omega[None, :]
        return np.concatenate([np.sin(args), np.cos(args)], axis=1)

    return np.concatenate([one(w), one(h)], axis=1)


def canonical_tensors(tensors, config_json=None):
    """convert.py hook: diffusers' DiTTransformer2DModel -> official keys (official ones pass through).
    The position table diffusers does not store is built for config.json's sample_size."""
    if not any(k.startswith("transformer_blocks.") for k in tensors):
        return tensors, None
    emb0 = _DIFFUSERS_EMB.format(i=0)
    out, seen = {}, set()
    for k, v in tensors.items():
        m = re.match(r"^transformer_blocks\.(\d+)\.(.*)$", k)
        if m:
            i, rest = int(m.group(1)), m.group(2)
            if rest.startswith("norm1.emb."):
                sub = rest[len("norm1.emb."):]
                ref = emb0 + sub
                if i != 0:  # copies of block 0's embedders: must be identical, then dropped
                    if ref not in tensors:
                        raise ConvertError(f"unexpected key {k!r}: block 0 has no {ref!r}")
                    if tuple(tensors[ref].shape) != tuple(v.shape) or not np.array_equal(np.asarray(tensors[ref]), np.asarray(v)):
                        raise ConvertError(f"transformer block {i}'s copy of the timestep/class embedders "
                                           f"({k!r}) differs from block 0's; ditrt has one shared embedder")
                    continue
                sm = re.match(r"^timestep_embedder\.linear_([12])\.(weight|bias)$", sub)
                if sm:
                    out[f"t_embedder.mlp.{2 * int(sm.group(1)) - 2}.{sm.group(2)}"] = v
                elif sub == "class_embedder.embedding_table.weight":
                    out["y_embedder.embedding_table.weight"] = v
                else:
                    out[k] = v  # reported as unexpected
                continue
            am = re.match(r"^attn1\.to_([qkv])\.(weight|bias)$", rest)
            if am:
                seen.add((i, am.group(2)))
                continue
            for d_name, o_name in _DIFFUSERS_BLOCK.items():
                if rest.startswith(d_name + "."):
                    out[f"blocks.{i}.{o_name}{rest[len(d_name):]}"] = v
                    break
            else:
                out[k] = v
            continue
        for d_name, o_name in _DIFFUSERS_TOP.items():
            if k.startswith(d_name + "."):
                out[o_name + k[len(d_name):]] = v
                break
        else:
            out[k] = v
    for i, kind in sorted(seen):  # q, k, v concatenated in that order -> qkv
        parts = [f"transformer_blocks.{i}.attn1.to_{c}.{kind}" for c in "qkv"]
        missing = [p for p in parts if p not in tensors]
        if missing:
            raise ConvertError(f"missing key {missing[0]!r}, needed for blocks.{i}.attn.qkv.{kind}")
        out[f"blocks.{i}.attn.qkv.{kind}"] = np.concatenate([np.asarray(tensors[p]) for p in parts], axis=0)
    if "pos_embed" not in out:
        if "x_embedder.proj.weight" not in out:
            raise ConvertError("missing key 'pos_embed.proj.weight', needed to infer the DiT config")
        d, _, p, _ = shape_of({"x_embedder.proj.weight": out["x_embedder.proj.weight"].shape}, "x_embedder.proj.weight", 4, "DiT")
        cj = config_json or ConfigJson()
        size, _ = cj.pick("input_size", "sample_size", cj.side("sample_size"), None, None)
        if size is None:
            raise ConvertError("diffusers DiT weights do not store the input size: put diffusers' config.json "
                               "(sample_size) next to IN, or pass the folder that holds both")
        if size % p:
            raise ConvertError(f"input size {size} is not a multiple of the patch size {p}")
        out["pos_embed"] = sincos_2d_np(d, size // p)[None].astype(np.float32)
    return out, _DIFFUSERS_NOTE
