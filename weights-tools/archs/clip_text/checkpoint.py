"""CLIP text encoder (transformers' CLIPTextModel, as U-ViT's and Stable Diffusion's
FrozenCLIPEmbedder load openai/clip-vit-large-patch14): presets, key list, config inference from
the shapes and transformers' config.json, and the tokenizer stored beside the weights. Torch-free.

Stored keys are CLIPTextModel's state_dict keys as transformers 4 (and every released file) names
them (`text_model.embeddings.token_embedding.weight`, `text_model.encoder.layers.N.self_attn.
q_proj.weight`, ...); transformers 5 saves a CLIPTextModel without the `text_model.` prefix, which
is added back. A whole CLIPModel's vision tower and projections are dropped with a note, the int64
`position_ids` buffer older files carry is ignored.
The tokenizer's merges travel in the output as the U8 tensor `tokenizer.bpe_merges` (vocab.py).
"""

import os

import numpy as np

from archs import ConfigJson, ConvertError, from_command_line, heads_for, shape_of
from archs.clip_text.vocab import read_merges, merges_text, vocab_from_merges

PREFIX = "text_model."
# What a whole CLIPModel (or CLIPTextModelWithProjection) holds beside the text model.
OTHER_MODELS = ("vision_model.", "visual_projection.", "text_projection.", "logit_scale")
POSITION_IDS = "text_model.embeddings.position_ids"
# The text model's top-level modules, unprefixed in transformers 5's CLIPTextModel files.
TEXT_MODULES = ("embeddings.", "encoder.", "final_layer_norm.")
TOKENIZER_KEY = "tokenizer.bpe_merges"  # src/models/clip_text.rs TOKENIZER_MERGES_KEY
TOKENIZER_FILES = ("vocab.json", "merges.txt")
ACTS = ("quick_gelu", "gelu")  # transformers' hidden_act names ditrt runs
# OpenAI's CLIP text towers all have 64-wide heads.
DEFAULT_HEADS = {512: 8, 768: 12, 1024: 16, 1280: 20}


def make_config(vocab_size, width, layers, heads, intermediate, max_positions=77, act="quick_gelu", eps=1e-5):
    """The `ditrt.config` JSON object (src/models/clip_text.rs ClipTextConfig)."""
    return {
        "arch": "clip_text",
        "vocab_size": int(vocab_size),
        "width": int(width),
        "layers": int(layers),
        "heads": int(heads),
        "intermediate": int(intermediate),
        "max_positions": int(max_positions),
        "act": str(act),
        "eps": float(eps),
    }


PRESETS = {"CLIP-ViT-L/14-text": make_config(49408, 768, 12, 12, 3072)}


def expected_shapes(cfg):
    """CLIPTextModel key -> shape in its module order."""
    d, h = cfg["width"], cfg["intermediate"]
    shapes = {
        "text_model.embeddings.token_embedding.weight": (cfg["vocab_size"], d),
        "text_model.embeddings.position_embedding.weight": (cfg["max_positions"], d),
    }
    for i in range(cfg["layers"]):
        p = f"text_model.encoder.layers.{i}"
        for name in ("k_proj", "v_proj", "q_proj", "out_proj"):
            shapes[f"{p}.self_attn.{name}.weight"] = (d, d)
            shapes[f"{p}.self_attn.{name}.bias"] = (d,)
        shapes.update({f"{p}.layer_norm1.weight": (d,), f"{p}.layer_norm1.bias": (d,),
                       f"{p}.mlp.fc1.weight": (h, d), f"{p}.mlp.fc1.bias": (h,),
                       f"{p}.mlp.fc2.weight": (d, h), f"{p}.mlp.fc2.bias": (d,),
                       f"{p}.layer_norm2.weight": (d,), f"{p}.layer_norm2.bias": (d,)})
    shapes.update({"text_model.final_layer_norm.weight": (d,), "text_model.final_layer_norm.bias": (d,)})
    return shapes


def read_config_json(path):
    """transformers' config.json: a CLIPTextConfig, or a CLIPModel's with the text model's values
    under `text_config`."""
    cj = ConfigJson.read(path, ())
    text = cj.get("text_config")
    if isinstance(text, dict):
        return ConfigJson(text, f"{path} (text_config)")
    if cj.get("model_type") not in (None, "clip_text_model"):
        raise ConvertError(f"{path}: a config for model_type {cj.get('model_type')!r}, not a CLIP text model")
    return cj


def canonical_tensors(tensors):
    """Prefixes transformers 5's unprefixed keys, drops a CLIPModel's other towers (with a note)
    and the position_ids buffer; anything else outside `text_model.` stays, so check_tensors
    names it."""
    if not any(k.startswith(PREFIX) for k in tensors):
        tensors = {PREFIX + k if k.startswith(TEXT_MODULES) else k: v for k, v in tensors.items()}
    other = [k for k in tensors if k.startswith(OTHER_MODELS)]
    kept = {k: v for k, v in tensors.items() if k not in other and k != POSITION_IDS}
    note = f"dropped {len(other)} tensors of the vision model and projections (a whole CLIPModel)" if other else None
    return kept, note


def infer_config(shapes, num_heads=None, preset=None, config_json=None):
    """Sizes from the shapes (config.json must agree), heads / act / eps from a flag, config.json
    or OpenAI CLIP's defaults."""
    cj = config_json or ConfigJson()
    if not any(k.startswith(PREFIX) for k in shapes):
        raise ConvertError(f"no {PREFIX}* keys: not a transformers CLIPTextModel or CLIPModel")
    vocab, width = shape_of(shapes, "text_model.embeddings.token_embedding.weight", 2, "clip_text")
    positions = shape_of(shapes, "text_model.embeddings.position_embedding.weight", 2, "clip_text")[0]
    layers = 0
    while f"text_model.encoder.layers.{layers}.mlp.fc1.weight" in shapes:
        layers += 1
    if layers == 0:
        raise ConvertError("missing key 'text_model.encoder.layers.0.mlp.fc1.weight', needed to infer the clip_text config")
    intermediate = shape_of(shapes, "text_model.encoder.layers.0.mlp.fc1.weight", 2, "clip_text")[0]
    emb = "text_model.embeddings"
    cj.agree("vocab_size", vocab, f"{emb}.token_embedding.weight")
    cj.agree("hidden_size", width, f"{emb}.token_embedding.weight")
    cj.agree("max_position_embeddings", positions, f"{emb}.position_embedding.weight")
    cj.agree("num_hidden_layers", layers, "text_model.encoder.layers.*")
    cj.agree("intermediate_size", intermediate, "text_model.encoder.layers.0.mlp.fc1.weight")
    if preset is not None and preset not in PRESETS:
        raise ConvertError(f"unknown --preset {preset!r} (known: {', '.join(PRESETS)})")
    flag = from_command_line("heads", "--num-heads", num_heads, preset, PRESETS)
    heads, source = cj.pick("heads", "num_attention_heads", None, flag, None)
    if heads is None:
        heads = heads_for(None, width, DEFAULT_HEADS, "width")
    elif type(heads) is not int or heads <= 0 or width % heads:
        raise ConvertError(f"{source} gives {heads!r} heads, which do not divide the width {width}")
    act, _ = cj.pick("act", "hidden_act", None, None, "quick_gelu")
    if act not in ACTS:
        raise ConvertError(f"{cj.path}: hidden_act {act!r} is not one ditrt runs ({', '.join(ACTS)})")
    eps, _ = cj.pick("eps", "layer_norm_eps", None, None, 1e-5)
    cfg = make_config(vocab, width, layers, heads, intermediate, positions, act, eps)
    if preset is not None and cfg != PRESETS[preset]:
        diff = [k for k in cfg if cfg[k] != PRESETS[preset][k]]
        raise ConvertError(f"--preset {preset}: the weights have {diff[0]} {cfg[diff[0]]}, the preset {PRESETS[preset][diff[0]]}")
    return cfg


def data_tensors(cfg, weights_path, tokenizer=None):
    """The tokenizer's merges as the U8 tensor TOKENIZER_KEY, from --tokenizer (a folder with
    vocab.json + merges.txt, or bpe_simple_vocab_16e6.txt.gz) or the files beside the weights."""
    if tokenizer is None:
        folder = os.path.dirname(os.path.abspath(weights_path))
        if not os.path.isfile(os.path.join(folder, "merges.txt")):
            raise ConvertError(f"{folder}: no tokenizer files ({' + '.join(TOKENIZER_FILES)}) beside the weights; "
                               "give --tokenizer PATH (such a folder, or open_clip's bpe_simple_vocab_16e6.txt.gz)")
        tokenizer = folder
    elif not os.path.exists(tokenizer):
        raise ConvertError(f"--tokenizer {tokenizer}: no such file or folder")
    merges = read_merges(tokenizer)
    ids = len(vocab_from_merges(merges))
    if cfg["vocab_size"] != ids:
        raise ConvertError(f"the token embedding has {cfg['vocab_size']} rows, CLIP's tokenizer ({tokenizer}) "
                           f"gives {ids} ids")
    return {TOKENIZER_KEY: np.frombuffer(merges_text(merges).encode("utf-8"), dtype=np.uint8)}
