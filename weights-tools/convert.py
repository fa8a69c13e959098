#!/usr/bin/env python3
"""Convert an official checkpoint to ditrt's safetensors (official keys, config in the metadata).

    python3 weights-tools/convert.py --arch dit [--num-heads N] [--preset DiT-XL/2] [--dtype f32] IN OUT.safetensors

IN: an official .pt/.pth/.ckpt (torch.load weights_only=True; {"ema"|"model"|"state_dict": ...}
unwrapped) or a safetensors file with official keys (no torch needed). An arch may first map
another layout onto its stored one (archs/*/checkpoint.py canonical_tensors; it prints a note). Every
config value is read off the tensor shapes; the metadata key `ditrt.config` holds it as JSON.
Errors: one line on stderr, exit 2, and OUT is left untouched.
"""

import argparse
import inspect
import json
import sys

import numpy as np

from archs import ARCHS, ConvertError, check_tensors, get_arch
from ckpt_io import bf16_to_f32, f32_to_bf16, read_checkpoint, write_safetensors

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


def convert(arch_name, src, dst, dtype="f32", num_heads=None, preset=None):
    """-> (config, parameter count). Raises ConvertError with a one-line message."""
    arch = get_arch(arch_name)
    tensors = read_checkpoint(src)  # its errors already name the file
    try:
        if hasattr(arch, "canonical_tensors"):
            # hooks may also take the input path and --preset (e.g. for a config.json beside IN)
            params = inspect.signature(arch.canonical_tensors).parameters
            extra = {k: v for k, v in (("src", src), ("preset", preset)) if k in params}
            tensors, note = arch.canonical_tensors(tensors, **extra)
            if note:
                print(f"note: {note}")
        shapes = {k: tuple(v.shape) for k, v in tensors.items()}
        cfg = arch.infer_config(shapes, num_heads=num_heads, preset=preset)
        expected = arch.expected_shapes(cfg)
        check_tensors(shapes, expected)
        for name in expected:
            if tensors[name].dtype.kind != "f":
                raise ConvertError(f"key {name!r}: expected a float tensor, found {tensors[name].dtype}")
        out = {name: cast(name, tensors[name], dtype) for name in expected}  # official module order
    except ConvertError as e:
        raise ConvertError(f"{src}: {e}") from None
    write_safetensors(dst, out, {"ditrt.config": json.dumps(cfg)})
    return cfg, sum(a.size for a in out.values())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[1])
    ap.add_argument("--arch", required=True, help=f"backbone ({', '.join(sorted(ARCHS))})")
    ap.add_argument("--num-heads", type=int, help="attention heads (not visible in the weights)")
    ap.add_argument("--preset", help='check against a named config, e.g. "DiT-XL/2"')
    ap.add_argument("--dtype", choices=DTYPES, default="f32", help="output dtype (default f32)")
    ap.add_argument("input", help="official .pt/.pth or safetensors")
    ap.add_argument("output", help="OUT.safetensors")
    args = ap.parse_args(argv)
    try:
        cfg, n = convert(args.arch, args.input, args.output, args.dtype, args.num_heads, args.preset)
    except (ConvertError, OSError) as e:
        print(f"convert.py: error: {e}", file=sys.stderr)
        return 2
    print(f"wrote {args.output}: {n} parameters ({n / 1e6:.1f}M), {args.dtype}, config {json.dumps(cfg)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
