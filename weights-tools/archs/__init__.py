"""The backbones, one package each: archs/<arch>/ holds
  checkpoint.py  what convert.py knows of the arch (torch-free): presets, config inference, keys
  reference.py   the PyTorch reference model, state_dict keys = the stored checkpoint keys
  fixtures.py    its test fixture configs (the interface is in reference/fixtures.py)
Shared: this module (registry, errors, key checks), reference/common.py (PyTorch layers),
reference/fixtures.py (the fixture recipe), reference/samplers.py, ckpt_io.py.

A checkpoint module provides:
  infer_config(shapes, options) -> config dict   (the `ditrt.config` JSON, read from tensor shapes)
  expected_shapes(config) -> {official key: shape} in module order
and optionally
  canonical_tensors(tensors) -> (tensors, note or None): the checkpoint in the stored layout
    (keys of another layout renamed, buffers or other models' keys dropped), before inference;
    it may also take keyword arguments src (the input path) and preset, which convert.py then passes
A new arch is a package like the others, named in ALL (and in ARCHS if convert.py takes it).
"""

import importlib

# Every arch package, in the order make_fixtures.py writes their fixtures.
ALL = ("dit", "diffit", "diffit_unet", "vae", "uvit", "tldm")
# The ones convert.py takes (--arch); diffit_unet has no released checkpoint to convert.
ARCHS = ("dit", "uvit", "tldm", "diffit", "vae")


class ConvertError(Exception):
    """A problem with the input checkpoint; its message is one line for the user."""


def get_arch(name):
    if name not in ARCHS:
        raise ConvertError(f"unknown --arch {name!r} (known: {', '.join(sorted(ARCHS))})")
    return importlib.import_module(f"archs.{name}.checkpoint")


def shape_of(shapes, key, ndim, arch):
    """The shape of `key`, which must exist with `ndim` dims to infer `arch`'s config."""
    if key not in shapes:
        raise ConvertError(f"missing key {key!r}, needed to infer the {arch} config")
    s = tuple(shapes[key])
    if len(s) != ndim:
        raise ConvertError(f"key {key!r}: expected a {ndim}-D tensor, found shape {list(s)}")
    return s


def heads_for(num_heads, width, defaults, what):
    """The head count: `num_heads` if given, else the official one for this width (`defaults`:
    width -> heads); it must divide the width, which the messages call `what`."""
    if num_heads is None:
        if width not in defaults:
            raise ConvertError(f"{what} {width} has no official head count; pass --num-heads or --preset")
        num_heads = defaults[width]
    if num_heads <= 0 or width % num_heads:
        raise ConvertError(f"--num-heads {num_heads} does not divide the {what} {width}")
    return num_heads


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
