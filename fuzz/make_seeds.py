#!/usr/bin/env python3
"""Writes the fuzzers' seed corpus, fuzz/seeds/<target>/ (committed; rerun after changing it).

Python standard library only. Seeds are tiny: libFuzzer grows its working corpus
(fuzz/corpus/<target>, not committed) from them.
"""
import json
import os
import shutil
import struct

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "seeds")


def safetensors(tensors, metadata=None, pad=True):
    """tensors: [(key, dtype, shape, data bytes)] -> file bytes with consecutive offsets."""
    header, offset = {}, 0
    if metadata:
        header["__metadata__"] = metadata
    for key, dtype, shape, data in tensors:
        header[key] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
    text = json.dumps(header, separators=(",", ":"))
    if pad:
        text += " " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text.encode() + b"".join(t[3] for t in tensors)


# Configs of every architecture (the shapes of tests/fixtures and the official presets).
CONFIGS = {
    "dit": {"arch": "dit", "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 64, "depth": 2,
            "num_heads": 4, "mlp_ratio": 4.0, "num_classes": 10, "learn_sigma": True},
    "dit_xl2": {"arch": "dit", "input_size": 32, "patch_size": 2, "in_channels": 4, "hidden_size": 1152, "depth": 28,
                "num_heads": 16, "mlp_ratio": 4.0, "num_classes": 1000, "learn_sigma": True},
    "tldm": {"arch": "tldm", "input_size": 16, "patch_size": 4, "in_channels": 3, "hidden_size": 48, "depth": 2,
             "num_heads": 3, "mlp_ratio": 4.0, "num_classes": 5, "learn_sigma": False},
    "diffit": {"arch": "diffit", "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 48, "depth": 2,
               "num_heads": 3, "mlp_ratio": 4.0, "num_classes": 10, "learn_sigma": True},
    "uvit": {"arch": "uvit", "img_size": 8, "patch_size": 2, "in_chans": 4, "embed_dim": 32, "depth": 5, "num_heads": 4,
             "mlp_ratio": 4.0, "mlp_time_embed": True, "num_classes": 7, "null_class": False, "conv": False},
    "diffit_unet": {"arch": "diffit_unet", "image_size": 16, "in_channels": 3, "channels": [16, 16, 32],
                    "blocks_per_level": 1, "num_heads": 2, "window_size": 4, "mlp_ratio": 2.0, "time_dim": 32,
                    "groups": 2, "num_classes": 10, "learn_sigma": True},
    "vae": {"arch": "vae", "latent_channels": 4, "out_channels": 3, "block_out_channels": [16, 24, 24],
            "layers_per_block": 2, "norm_num_groups": 8, "latent_size": 4},
}
SAMPLING = {"sampler": "ddpm", "steps": 20, "cfg_scale": 3.0}


def write(target, name, data):
    d = os.path.join(ROOT, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def main():
    shutil.rmtree(ROOT, ignore_errors=True)

    # config_parser: config JSON, optionally NUL + sampling JSON.
    for name, config in CONFIGS.items():
        write("config_parser", name + ".json", json.dumps(config).encode())
    write("config_parser", "dit_sampling.json", (json.dumps(CONFIGS["dit"]) + "\0" + json.dumps(SAMPLING)).encode())
    write("config_parser", "uvit_dpm.json",
          (json.dumps(CONFIGS["uvit"]) + "\0" + json.dumps({"sampler": "dpm-solver", "steps": 50, "cfg_scale": 0.4,
                                                            "schedule": "vp-linear"})).encode())

    # safetensors_reader: tiny files of each dtype path, metadata, an empty tensor.
    f32 = struct.pack("<3f", 1.0, -2.0, 0.5)
    reader = {
        "empty": safetensors([]),
        "f32_meta": safetensors([("w", "F32", [3], f32)], {"ditrt.config": json.dumps(CONFIGS["dit"])}),
        "f16_bf16": safetensors([("a", "F16", [2], b"\x00\x3c\x00\xc0"), ("b", "BF16", [1, 2], b"\x80\x3f\x00\x40")]),
        "f64": safetensors([("d", "F64", [2], struct.pack("<2d", 1.5, -3.0))]),
        "ints": safetensors([("i64", "I64", [2], struct.pack("<2q", 3, -1)), ("u8", "U8", [2, 2], b"\x00\x01\x02\xff"),
                             ("i32", "I32", [1], struct.pack("<i", 7))]),
        "zero_size": safetensors([("z", "F32", [0, 4], b""), ("s", "F32", [], struct.pack("<f", 2.0))]),
        "bool": safetensors([("flag", "BOOL", [2], b"\x01\x00")], pad=False),
    }
    for name, data in reader.items():
        write("safetensors_reader", name, data)

    # weights_binding: the target reads its bytes as choices; the first picks the
    # architecture (0 dit, 1 tldm, 2 diffit, 3 uvit, 4 diffit_unet, 5 vae).
    # Each seed is 64 bytes, room for the damage the later bytes choose.
    for arch in range(6):
        sizes = bytes([arch * 43, 1, 2, 1, 2, 1, 1, 0, 1, 1, 0, 2, 1, 0, 0, 0])
        write("weights_binding", f"arch{arch}", sizes + bytes(48))
        write("weights_binding", f"arch{arch}_damaged", sizes[:12] + bytes([1, 3, 2, 5, 1, 6, 0, 4, 2, 1, 1, 9, 3]) + bytes(range(100, 139)))


if __name__ == "__main__":
    main()
