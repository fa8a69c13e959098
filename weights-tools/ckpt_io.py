"""Checkpoint containers: read .pt/.pth (torch, weights only) or safetensors; write safetensors.

safetensors is read and written here with numpy alone (the format is an 8-byte little-endian
header length, a JSON header, then raw little-endian data), because the `safetensors` package's
numpy API cannot handle bf16. tests/test_convert.py checks the files against the package.
"""

import json
import os
import pickle
import tempfile

import numpy as np

from archs import ConvertError

# safetensors dtype name <-> numpy storage dtype (bf16 is stored as raw uint16 bits)
_ST_DTYPES = {"F64": np.float64, "F32": np.float32, "F16": np.float16, "BF16": np.uint16,
              "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8, "U8": np.uint8,
              "BOOL": np.bool_}
_NP_NAMES = {np.dtype(np.float64): "F64", np.dtype(np.float32): "F32", np.dtype(np.float16): "F16",
             np.dtype(np.int64): "I64", np.dtype(np.int32): "I32", np.dtype(np.int16): "I16",
             np.dtype(np.int8): "I8", np.dtype(np.uint8): "U8", np.dtype(np.bool_): "BOOL"}


class BF16(np.ndarray):
    """Marks a uint16 array that holds bf16 bits (so the writer tags it BF16)."""


def bf16_to_f32(bits):
    return (np.asarray(bits, dtype=np.uint16).astype(np.uint32) << 16).view(np.float32)


def f32_to_bf16(x):
    """Round to nearest even, as torch does; NaN stays NaN."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32)
    rounded = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    nan = np.isnan(x)
    rounded[nan] = ((u[nan] >> 16) | 0x0040).astype(np.uint16)
    return rounded.view(BF16)


def is_safetensors(path):
    with open(path, "rb") as f:
        head = f.read(9)
    return len(head) == 9 and head[8:9] == b"{"


def read_safetensors(path):
    """-> (tensors {name: array, bf16 upcast to f32}, metadata {str: str}); tensors are memory-mapped."""
    data = np.memmap(path, dtype=np.uint8, mode="r")
    try:
        n = int.from_bytes(data[:8].tobytes(), "little")
        header = json.loads(data[8:8 + n].tobytes())
        meta = header.pop("__metadata__", None) or {}
        base = 8 + n
        tensors = {}
        for name, info in header.items():
            dtype = np.dtype(_ST_DTYPES[info["dtype"]])
            start, end = info["data_offsets"]
            if end - start != int(np.prod(info["shape"])) * dtype.itemsize or base + end > len(data):
                raise ValueError(f"tensor {name!r} has inconsistent offsets or runs past the end")
            arr = data[base + start:base + end].view(dtype).reshape(info["shape"])
            tensors[name] = bf16_to_f32(arr) if info["dtype"] == "BF16" else arr
    except (ValueError, KeyError, TypeError) as e:
        raise ConvertError(f"{path}: not a readable safetensors file ({e})") from None
    return tensors, meta


def write_safetensors(path, tensors, metadata=None):
    """Write atomically: a temp file in the output's directory, renamed over `path` when complete."""
    header, offset, blobs = {}, 0, []
    if metadata:
        header["__metadata__"] = {str(k): str(v) for k, v in metadata.items()}
    for name, arr in tensors.items():
        dtype = "BF16" if isinstance(arr, BF16) else _NP_NAMES[arr.dtype]
        blob = np.ascontiguousarray(arr).astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(blob)]}
        offset += len(blob)
        blobs.append(blob)
    head = json.dumps(header, separators=(",", ":")).encode()
    head += b" " * (-len(head) % 8)  # data starts 8-byte aligned
    out_dir = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix="." + os.path.basename(path) + ".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(len(head).to_bytes(8, "little"))
            f.write(head)
            for blob in blobs:
                f.write(blob)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def read_torch(path):
    """Official .pt/.pth/.ckpt: torch.load(weights_only=True); {"ema"|"model"|"state_dict": state_dict}
    is unwrapped."""
    import torch  # only pickles need torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        if "weights only" in str(e).lower():  # torch's message when the allowlist refuses a global
            raise ConvertError(f"{path}: refused: the pickle needs arbitrary code to load (torch.load "
                               "weights_only=True failed); re-save the bare state_dict of tensors") from None
        raise ConvertError(f"{path}: cannot read as a PyTorch checkpoint ({e})") from None
    except Exception as e:
        text = str(e).strip() or type(e).__name__
        first = text.splitlines()[0].split(". ")[0]  # torch's messages run on for sentences
        raise ConvertError(f"{path}: cannot read as a PyTorch checkpoint ({first})") from None
    if isinstance(obj, dict):
        for wrapper in ("ema", "model", "state_dict"):  # state_dict: CompVis / Lightning .ckpt
            if wrapper in obj and isinstance(obj[wrapper], dict):
                obj = obj[wrapper]
                break
    if not isinstance(obj, dict):
        raise ConvertError(f"{path}: expected a state_dict (dict of tensors), found {type(obj).__name__}")
    tensors = {}
    for name, t in obj.items():
        if not isinstance(t, torch.Tensor):
            raise ConvertError(f"{path}: key {name!r} is a {type(t).__name__}, not a tensor")
        t = t.detach().cpu().contiguous()
        tensors[name] = (t.float() if t.dtype == torch.bfloat16 else t).numpy()
    return tensors


# A model folder's weights, first found first: diffusers', then transformers' names.
FOLDER_WEIGHTS = ("diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.bin", "model.safetensors",
                  "pytorch_model.bin")


def find_weights(path):
    """IN -> (the weights file, the config.json beside it or None). IN is the weights file or a
    diffusers or transformers model folder, whose weights are the first of FOLDER_WEIGHTS it has."""
    if os.path.isdir(path):
        found = [f for f in (os.path.join(path, name) for name in FOLDER_WEIGHTS) if os.path.isfile(f)]
        if not found:
            raise ConvertError(f"{path}: a folder without {' or '.join(FOLDER_WEIGHTS)}")
        path = found[0]
    config = os.path.join(os.path.dirname(os.path.abspath(path)), "config.json")
    return path, (config if os.path.isfile(config) else None)


def read_checkpoint(path):
    """-> {name: numpy array}; the container is recognised by content, not by suffix."""
    if not os.path.isfile(path):
        raise ConvertError(f"{path}: no such file")
    if is_safetensors(path):
        return read_safetensors(path)[0]
    return read_torch(path)
