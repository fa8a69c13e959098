#!/usr/bin/env python3
"""Convert an official checkpoint to ditrt's safetensors (official keys, config in the metadata).

    python3 weights-tools/convert.py --arch dit [--num-heads N] [--groups G] [--preset DiT-XL/2] [--dtype f32] IN OUT.safetensors
    python3 weights-tools/convert.py --arch clip_text [--tokenizer PATH] IN OUT.safetensors

IN: an official .pt/.pth/.ckpt (torch.load weights_only=True; {"ema"|"model"|"state_dict": ...}
unwrapped), a safetensors file with official keys (no torch needed), or a diffusers or
transformers model folder (its diffusion_pytorch_model / model .safetensors, else .bin). An arch may first map another layout onto
its stored one (archs/*/checkpoint.py canonical_tensors; it prints a note). Config values are read
off the tensor shapes; what they do not show (heads, GroupNorm groups, the latent size of a
diffusers file) comes from, first to last: a flag (--num-heads, --groups, --preset), diffusers'
config.json beside the weights (--arch dit|vae|clip_text: it must agree with the shapes; one line on
stderr says what it set, and a note what a flag overrode), the arch's default. The metadata key
`ditrt.config` holds the config as JSON. --arch clip_text also stores its tokenizer (--tokenizer, or
vocab.json + merges.txt beside the weights) as the U8 tensor `tokenizer.bpe_merges`.
Errors: one line on stderr, exit 2, and OUT is left untouched.
"""

import argparse
import inspect
import json
import sys

import numpy as np

from archs import ARCHS, ConfigJson, ConvertError, check_tensors, get_arch
from ckpt_io import bf16_to_f32, f32_to_bf16, find_weights, read_checkpoint, write_safetensors

DTYPES = ("f32", "f16", "bf16")


def cast(name, arr, dtype):
    """Contiguous copy of a float tensor in the output dtype; overflow to inf is an error."""
    x = np.ascontiguousarray(arr, dtype=np.float32)
    if dtype == "f32":
        return x
    if dtype == "f16":
        out = x.astype(np.float16)
        back = out.astype(np.float32)
    else:
        out = f32_to_bf16(x)
        back = bf16_to_f32(out)
    if np.any(np.isinf(back) & np.isfinite(x)):
        raise ConvertError(f"key {name!r}: values overflow {dtype}")
    return out


def _options(hook, options):
    """The options (given ones only) that `hook` names as parameters."""
    params = inspect.signature(hook).parameters
    return {k: v for k, v in options.items() if v is not None and k in params}


def convert(arch_name, src, dst, dtype="f32", num_heads=None, preset=None, groups=None, tokenizer=None):
    """-> (config, parameter count). Raises ConvertError with a one-line message."""
    arch = get_arch(arch_name)
    src, config_path = find_weights(src)
    options = {"num_heads": num_heads, "preset": preset, "groups": groups, "tokenizer": tokenizer}
    if config_path is not None and hasattr(arch, "read_config_json"):
        options["config_json"] = arch.read_config_json(config_path)
    elif config_path is not None and hasattr(arch, "DIFFUSERS_CLASSES"):
        options["config_json"] = ConfigJson.read(config_path, arch.DIFFUSERS_CLASSES)
    hooks = [getattr(arch, name, None) for name in ("canonical_tensors", "infer_config", "data_tensors")]
    hooks = [h for h in hooks if h is not None]
    taken = {k for h in hooks for k in _options(h, options)}
    for k, v in options.items():
        if v is not None and k not in taken:
            raise ConvertError(f"--{k.replace('_', '-')} does not apply to --arch {arch_name}")
    tensors = read_checkpoint(src)  # its errors already name the file
    try:
        if hasattr(arch, "canonical_tensors"):
            tensors, note = arch.canonical_tensors(tensors, **_options(arch.canonical_tensors, options))
            if note:
                print(f"note: {note}")
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        cfg = arch.infer_config(shapes, **_options(arch.infer_config, options))
        expected = arch.expected_shapes(cfg)
        check_tensors(shapes, expected)
        for name in expected:
            if tensors[name].dtype.kind != "f":
                raise ConvertError(f"key {name!r}: expected a float tensor, found {tensors[name].dtype}")
        out = {name: cast(name, tensors[name], dtype) for name in expected}  # official module order
        if hasattr(arch, "data_tensors"):
            out.update(arch.data_tensors(cfg, src, **_options(arch.data_tensors, options)))
    except ConvertError as e:
        raise ConvertError(f"{src}: {e}") from None
    if "config_json" in options:
        print(options["config_json"].report(), file=sys.stderr)
        for note in options["config_json"].notes:
            print(f"note: {note}", file=sys.stderr)
    write_safetensors(dst, out, {"ditrt.config": json.dumps(cfg)})
    return cfg, sum(out[name].size for name in expected)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--arch", required=True, help=f"backbone ({', '.join(sorted(ARCHS))})")
    ap.add_argument("--num-heads", type=int, help="attention heads (not visible in the weights)")
    ap.add_argument("--groups", type=int, help="GroupNorm groups (--arch vae; not visible in the weights)")
    ap.add_argument("--preset", help='check against a named config, e.g. "DiT-XL/2"')
    ap.add_argument("--tokenizer", help="--arch clip_text: a folder with vocab.json + merges.txt, or "
                                        "bpe_simple_vocab_16e6.txt.gz (default: the files beside the weights)")
    ap.add_argument("--dtype", choices=DTYPES, default="f32", help="output dtype (default f32)")
    ap.add_argument("input", help="official .pt/.pth, safetensors, or a diffusers model folder")
    ap.add_argument("output", help="OUT.safetensors")
    args = ap.parse_args(argv)
    try:
        cfg, n = convert(args.arch, args.input, args.output, args.dtype, args.num_heads, args.preset, args.groups,
                         args.tokenizer)
    except (ConvertError, OSError) as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {n} parameters ({n / 1e6:.1f}M), {args.dtype}, config {json.dumps(cfg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
