"""Stable Diffusion KL-f8 VAE decoder: presets, key list, config inference, and the mapping of the
other checkpoint layouts onto the one ditrt stores. Torch-free.

ditrt stores diffusers' AutoencoderKL layout (`decoder.up_blocks.i.resnets.j.*`,
`decoder.mid_block.attentions.0.to_{q,k,v,out.0}` as linear [C, C] weights, up_blocks.0 the
widest, `post_quant_conv`): it is what DiT's and DiffiT's samplers load
(`AutoencoderKL.from_pretrained("stabilityai/sd-vae-ft-ema")`), so those files convert by container
alone. Also accepted and mapped:
  - CompVis (ldm/modules/diffusionmodules/model.py Decoder): `decoder.up.i.block.j.*` with up.(n-1)
    the widest, `nin_shortcut`, `upsample.conv`, `mid.block_{1,2}`, `mid.attn_1.{norm,q,k,v,proj_out}`
    (1x1 convs [C, C, 1, 1]), `norm_out`; a full SD checkpoint nests all of it under
    `first_stage_model.`;
  - diffusers' deprecated attention names `query`/`key`/`value`/`proj_attn`.
Encoder, quant_conv and training-loss keys are dropped with a note; nothing else is.
diffusers' config.json beside the weights gives what the shapes do not (GroupNorm groups, the
latent size from sample_size) and must agree with them on the rest (infer_config).
"""

import re

import numpy as np

from archs import ConfigJson, ConvertError, from_command_line, shape_of

# SD's first-stage ddconfig: ch 128, ch_mult (1, 2, 4, 4), num_res_blocks 2, z_channels 4.
_SD = {"block_out_channels": [128, 256, 512, 512], "layers_per_block": 2, "latent_channels": 4,
       "out_channels": 3, "norm_num_groups": 32}
PRESETS = {"SD-VAE-KL-f8": dict(_SD, latent_size=32), "SD-VAE-KL-f8-512": dict(_SD, latent_size=64)}

SD_PREFIX = "first_stage_model."
DIFFUSERS_CLASSES = ("AutoencoderKL",)
SD_LATENT_SCALE = 0.18215  # what ditrt's samplers divide latents by (src/pipeline/vae_decode.rs)


def make_config(block_out_channels, layers_per_block=2, latent_channels=4, out_channels=3,
                norm_num_groups=32, latent_size=32):
    """The `ditrt.config` JSON object; field names are diffusers' AutoencoderKL config names
    (block_out_channels = ch * ch_mult, narrowest first). latent_size: the latent side the graph
    is built for (32 = 256 px)."""
    return {
        "arch": "vae",
        "latent_channels": int(latent_channels),
        "out_channels": int(out_channels),
        "block_out_channels": [int(c) for c in block_out_channels],
        "layers_per_block": int(layers_per_block),
        "norm_num_groups": int(norm_num_groups),
        "latent_size": int(latent_size),
    }


def _resnet_shapes(prefix, cin, cout):
    shapes = {
        f"{prefix}.norm1.weight": (cin,), f"{prefix}.norm1.bias": (cin,),
        f"{prefix}.conv1.weight": (cout, cin, 3, 3), f"{prefix}.conv1.bias": (cout,),
        f"{prefix}.norm2.weight": (cout,), f"{prefix}.norm2.bias": (cout,),
        f"{prefix}.conv2.weight": (cout, cout, 3, 3), f"{prefix}.conv2.bias": (cout,),
    }
    if cin != cout:
        shapes[f"{prefix}.conv_shortcut.weight"] = (cout, cin, 1, 1)
        shapes[f"{prefix}.conv_shortcut.bias"] = (cout,)
    return shapes


def expected_shapes(cfg):
    """diffusers key -> shape in diffusers' module order (Decoder: conv_in, up_blocks, mid_block,
    conv_norm_out, conv_out; then AutoencoderKL's post_quant_conv)."""
    chans = list(reversed(cfg["block_out_channels"]))  # up_blocks.0 is the widest
    z = cfg["latent_channels"]
    shapes = {"decoder.conv_in.weight": (chans[0], z, 3, 3), "decoder.conv_in.bias": (chans[0],)}
    cin = chans[0]
    for i, cout in enumerate(chans):
        for j in range(cfg["layers_per_block"] + 1):
            shapes.update(_resnet_shapes(f"decoder.up_blocks.{i}.resnets.{j}", cin, cout))
            cin = cout
        if i + 1 < len(chans):
            shapes[f"decoder.up_blocks.{i}.upsamplers.0.conv.weight"] = (cout, cout, 3, 3)
            shapes[f"decoder.up_blocks.{i}.upsamplers.0.conv.bias"] = (cout,)
    c = chans[0]
    attn = "decoder.mid_block.attentions.0"
    shapes.update({f"{attn}.group_norm.weight": (c,), f"{attn}.group_norm.bias": (c,)})
    for name in ("to_q", "to_k", "to_v", "to_out.0"):
        shapes[f"{attn}.{name}.weight"] = (c, c)
        shapes[f"{attn}.{name}.bias"] = (c,)
    for j in range(2):
        shapes.update(_resnet_shapes(f"decoder.mid_block.resnets.{j}", c, c))
    last = chans[-1]
    shapes.update({
        "decoder.conv_norm_out.weight": (last,), "decoder.conv_norm_out.bias": (last,),
        "decoder.conv_out.weight": (cfg["out_channels"], last, 3, 3), "decoder.conv_out.bias": (cfg["out_channels"],),
        "post_quant_conv.weight": (z, z, 1, 1), "post_quant_conv.bias": (z,),
    })
    return shapes


# CompVis names -> diffusers names (applied after the up-level renumbering).
_COMPVIS_RENAMES = [
    (re.compile(r"^decoder\.mid\.block_(\d)\."), lambda m: f"decoder.mid_block.resnets.{int(m.group(1)) - 1}."),
    (re.compile(r"^decoder\.mid\.attn_1\.norm\."), lambda m: "decoder.mid_block.attentions.0.group_norm."),
    (re.compile(r"^decoder\.mid\.attn_1\.(q|k|v)\."), lambda m: f"decoder.mid_block.attentions.0.to_{m.group(1)}."),
    (re.compile(r"^decoder\.mid\.attn_1\.proj_out\."), lambda m: "decoder.mid_block.attentions.0.to_out.0."),
    (re.compile(r"^decoder\.norm_out\."), lambda m: "decoder.conv_norm_out."),
    (re.compile(r"\.nin_shortcut\."), lambda m: ".conv_shortcut."),
]
# diffusers' deprecated attention-block names (modeling_utils._convert_deprecated_attention_blocks).
_DEPRECATED_ATTN = {"query": "to_q", "key": "to_k", "value": "to_v", "proj_attn": "to_out.0"}
_ATTN_LINEARS = re.compile(r"^decoder\.mid_block\.attentions\.0\.to_(q|k|v|out\.0)\.weight$")


def _rename_compvis(key, levels):
    m = re.match(r"^decoder\.up\.(\d+)\.(block\.(\d+)|upsample)\.(.*)$", key)
    if m:
        i = levels - 1 - int(m.group(1))  # CompVis up.(n-1) is diffusers' up_blocks.0
        inner = f"resnets.{m.group(3)}" if m.group(3) is not None else "upsamplers.0.conv"
        rest = m.group(4)[len("conv."):] if m.group(3) is None and m.group(4).startswith("conv.") else m.group(4)
        key = f"decoder.up_blocks.{i}.{inner}.{rest}"
    for pattern, repl in _COMPVIS_RENAMES:
        key = pattern.sub(repl, key)
    return key


def canonical_tensors(tensors):
    """convert.py hook: decoder + post_quant_conv in diffusers' layout. -> (tensors, note or None)."""
    notes = []
    if any(k.startswith(SD_PREFIX) for k in tensors):
        others = [k for k in tensors if not k.startswith(SD_PREFIX)]
        tensors = {k[len(SD_PREFIX):]: v for k, v in tensors.items() if k.startswith(SD_PREFIX)}
        notes.append(f"took the VAE under '{SD_PREFIX}' and ignored {len(others)} other key(s) of the full checkpoint")
    unused = [k for k in tensors if re.match(r"^(encoder\.|quant_conv\.|loss\.)", k)]
    if unused:
        notes.append(f"ignored {len(unused)} encoder / quant_conv / loss key(s)")
        tensors = {k: v for k, v in tensors.items() if k not in set(unused)}
    if any(k.startswith(("decoder.up.", "decoder.mid.")) for k in tensors):
        levels = len({m.group(1) for k in tensors if (m := re.match(r"^decoder\.up\.(\d+)\.", k))})
        tensors = {_rename_compvis(k, levels): v for k, v in tensors.items()}
        notes.append("mapped the CompVis layout to diffusers'")
    renamed = {}
    for k, v in tensors.items():
        m = re.match(r"^(decoder\.mid_block\.attentions\.0)\.(query|key|value|proj_attn)\.(weight|bias)$", k)
        renamed[f"{m.group(1)}.{_DEPRECATED_ATTN[m.group(2)]}.{m.group(3)}" if m else k] = v
    # The attention projections are 1x1 convs in CompVis files: [C, C, 1, 1] -> [C, C].
    tensors = {k: (np.asarray(v).reshape(v.shape[:2]) if _ATTN_LINEARS.match(k) and np.ndim(v) == 4
                   and tuple(v.shape[2:]) == (1, 1) else v)
               for k, v in renamed.items()}
    return tensors, "; ".join(notes) or None


def infer_config(shapes, num_heads=None, preset=None, groups=None, config_json=None):
    """Channels and depth from the shapes (config.json must agree); GN groups and the latent size
    are not in the weights: --groups / the preset, else config.json (norm_num_groups; sample_size,
    the image side), else 32 groups and latent 32 (256 px)."""
    cj = config_json or ConfigJson()
    if num_heads not in (None, 1):
        raise ConvertError(f"--num-heads {num_heads}: the VAE's mid attention has a single head")
    if preset is not None and preset not in PRESETS:
        raise ConvertError(f"unknown --preset {preset!r} (known: {', '.join(PRESETS)})")
    levels = sorted({int(m.group(1)) for k in shapes if (m := re.match(r"^decoder\.up_blocks\.(\d+)\.", k))})
    if not levels:
        raise ConvertError("no 'decoder.up_blocks.*' keys: not a KL VAE decoder")
    widest_first = [shape_of(shapes, f"decoder.up_blocks.{i}.resnets.0.conv1.weight", 4, "VAE")[0] for i in range(max(levels) + 1)]
    layers = max(int(m.group(1)) for k in shapes if (m := re.match(r"^decoder\.up_blocks\.0\.resnets\.(\d+)\.", k)))
    latent = shape_of(shapes, "decoder.conv_in.weight", 4, "VAE")[1]
    out = shape_of(shapes, "decoder.conv_out.weight", 4, "VAE")[0]
    blocks = list(reversed(widest_first))
    cj.agree("block_out_channels", blocks, "decoder.up_blocks.*.resnets.0.conv1.weight")
    cj.agree("layers_per_block", layers, "decoder.up_blocks.0.resnets.*")
    cj.agree("latent_channels", latent, "decoder.conv_in.weight")
    cj.agree("out_channels", out, "decoder.conv_out.weight")

    norm_num_groups, source = cj.pick("norm_num_groups", "norm_num_groups", None,
                                      from_command_line("norm_num_groups", "--groups", groups, preset, PRESETS), 32)
    image = cj.side("sample_size")
    if image is not None and image % (1 << (len(blocks) - 1)):
        raise ConvertError(f"config.json sample_size {image} is not a multiple of {1 << (len(blocks) - 1)} "
                           f"(the upsampling of {len(blocks)} levels)")
    latent_size, _ = cj.pick("latent_size", "sample_size", None if image is None else image >> (len(blocks) - 1),
                             from_command_line("latent_size", None, None, preset, PRESETS), 32)
    shifted = [f"{k} {cj.get(k)}" for k, plain in (("scaling_factor", SD_LATENT_SCALE), ("shift_factor", 0))
               if cj.get(k) not in (None, plain)]
    if shifted:
        cj.notes.append(f"config.json has {' and '.join(shifted)}; ditrt decodes latents / {SD_LATENT_SCALE}, "
                        "unshifted (its config has no field for this), so latents scaled for this VAE decode off-scale")
    cfg = make_config(blocks, layers, latent, out, norm_num_groups, latent_size)
    if preset is not None:
        for name in ("block_out_channels", "layers_per_block", "latent_channels", "out_channels"):
            if cfg[name] != PRESETS[preset][name]:
                raise ConvertError(f"--preset {preset}: checkpoint has {name} {cfg[name]}, preset has {PRESETS[preset][name]}")
    if type(norm_num_groups) is not int or norm_num_groups <= 0:
        raise ConvertError(f"GroupNorm groups {norm_num_groups!r} ({source}) is not a positive integer")
    bad = [c for c in blocks if c % norm_num_groups]
    if bad:
        raise ConvertError(f"channels {bad} are not multiples of {norm_num_groups} GroupNorm groups ({source})")
    return cfg
