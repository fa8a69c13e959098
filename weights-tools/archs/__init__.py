"""Per-backbone checkpoint knowledge for convert.py (torch-free).

Each arch is one module here that provides:
  infer_config(shapes, options) -> config dict   (the `ditrt.config` JSON, read from tensor shapes)
  expected_shapes(config) -> {official key: shape} in module order
and optionally
  canonical_tensors(tensors) -> (tensors, note or None): the checkpoint in the stored layout
    (keys of another layout renamed, buffers or other models' keys dropped), before inference;
    it may also take keyword arguments src (the input path) and preset, which convert.py then passes
Add uvit / diffit / tldm / vae as further modules and list them in ARCHS.
"""

import importlib

ARCHS = {"dit": "archs.dit", "uvit": "archs.uvit", "tldm": "archs.tldm", "diffit": "archs.diffit", "vae": "archs.vae"}


class ConvertError(Exception):
    """A problem with the input checkpoint; its message is one line for the user."""


def get_arch(name):
    if name not in ARCHS:
        raise ConvertError(f"unknown --arch {name!r} (known: {', '.join(sorted(ARCHS))})")
    return importlib.import_module(ARCHS[name])


def shape_of(shapes, key, ndim, arch):
    """The shape of `key`, which must exist with `ndim` dims to infer `arch`'s config."""
    if key not in shapes:
        raise ConvertError(f"missing key {key!r}, needed to infer the {arch} config")
    s = tuple(shapes[key])
    if len(s) != ndim:
        raise ConvertError(f"key {key!r}: expected a {ndim}-D tensor, found shape {list(s)}")
    return s


def check_tensors(shapes, expected):
    """Raise ConvertError on the first missing key, unexpected key or wrong shape."""
    missing = [k for k in expected if k not in shapes]
    if missing:
        more = f" (and {len(missing) - 1} more missing)" if len(missing) > 1 else ""
        k = missing[0]
        raise ConvertError(f"missing key {k!r} (expected shape {list(expected[k])}){more}")
    unexpected = [k for k in shapes if k not in expected]
    if unexpected:
        more = f" (and {len(unexpected) - 1} more unexpected)" if len(unexpected) > 1 else ""
        k = unexpected[0]
        raise ConvertError(f"unexpected key {k!r} (shape {list(shapes[k])}){more}")
    for k, want in expected.items():
        if tuple(shapes[k]) != tuple(want):
            raise ConvertError(f"key {k!r}: expected shape {list(want)}, found {list(shapes[k])}")
