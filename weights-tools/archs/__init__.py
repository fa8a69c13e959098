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
  DIFFUSERS_CLASSES: the diffusers `_class_name`s whose config.json (beside the weights) the arch
    reads; convert.py then passes it to the hooks as `config_json` (a ConfigJson);
  read_config_json(path) -> ConfigJson: instead of DIFFUSERS_CLASSES, for another config.json
    layout (transformers');
  data_tensors(cfg, weights_path) -> {key: array}: tensors stored beside the parameters, which
    no graph reads (clip_text: its tokenizer).
Each hook gets those of the options num_heads, preset, groups, tokenizer, config_json that it
names as parameters; a flag given that no hook names is an error.
A new arch is a package like the others, named in ALL (and in ARCHS if convert.py takes it).
"""

import importlib
import json

# Every arch package, in the order make_fixtures.py writes their fixtures.
ALL = ("dit", "diffit", "diffit_unet", "vae", "uvit", "tldm", "uvit_t2i", "clip_text")
# The ones convert.py takes (--arch); diffit_unet has no released checkpoint to convert.
ARCHS = ("dit", "uvit", "tldm", "diffit", "vae", "uvit_t2i", "clip_text")


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


class ConfigJson:
    """diffusers' config.json beside the weights. A value the shapes also give goes through
    agree() (config.json must say the same), one they do not give through pick() (a flag on the
    command line beats config.json, which beats the default); convert.py then prints report(),
    one line on what config.json set, and the notes. ConfigJson() stands for no config.json."""

    def __init__(self, values=None, path="config.json"):
        self.values, self.path = values or {}, path
        self.set, self.agreed, self.notes = [], [], []
        self._taken = set()

    @classmethod
    def read(cls, path, classes):
        """The file at `path`, which must be a config of one of the diffusers `classes` when it
        names its class."""
        with open(path) as f:
            try:
                values = json.load(f)
            except ValueError as e:
                raise ConvertError(f"{path}: not valid JSON ({e})") from None
        if not isinstance(values, dict):
            raise ConvertError(f"{path}: expected a JSON object, found {type(values).__name__}")
        name = values.get("_class_name")
        if name is not None and name not in classes:
            raise ConvertError(f"{path}: a config for {name}, not {' or '.join(classes)}")
        return cls(values, path)

    def get(self, key):
        """config.json's value of `key`; None when absent or null."""
        return self.values.get(key)

    def side(self, key):
        """A size: a positive integer or a square [h, w] pair -> int, or None when absent."""
        value = self.get(key)
        if isinstance(value, list):
            if len(value) != 2 or value[0] != value[1]:
                raise ConvertError(f"{self.path}: {key} {value} is not square")
            value = value[0]
        if value is not None and (type(value) is not int or value <= 0):
            raise ConvertError(f"{self.path}: {key} {value!r} is not a positive integer")
        return value

    def agree(self, key, in_weights, where, value=None, says=None):
        """config.json's `key` (or `value`, derived from it and worded `says`) must equal the
        weights' value, read from the keys `where`."""
        value = self.get(key) if value is None else value
        if value is None:
            return
        if value != in_weights:
            raise ConvertError(f"config.json says {says or f'{key} {value!r}'}, the weights have {in_weights} ({where})")
        if key not in self._taken and key not in self.agreed:
            self.agreed.append(key)

    def pick(self, name, key, value, flag, default):
        """Config field `name`, which the shapes do not give: `flag` ((words, value) from the
        command line, or None), else config.json's `key` (or `value`, derived from it), else
        `default`. -> (the value, where it came from)."""
        raw = self.get(key)
        value = raw if value is None else value
        if value is not None:
            self._taken.add(key)
        if flag is not None:
            words, given = flag
            if value is not None and value != given:
                self.notes.append(f"{words} sets {name} {given} over config.json's {key} {raw!r}")
            return given, words
        if value is None:
            return default, "the default"
        self.set.append(f"{name} {value}" + ("" if (name, value) == (key, raw) else f" (from {key} {raw!r})"))
        return value, f"config.json {key}"

    def report(self):
        """One line: what config.json set and what it agreed on with the weights."""
        said = [f"set {', '.join(self.set)}"] if self.set else []
        said += [f"the weights agree on {', '.join(self.agreed)}"] if self.agreed else []
        return f"read {self.path}: {'; '.join(said) or 'nothing ditrt uses'}"


def from_command_line(name, flag, value, preset, presets):
    """What the command line sets for config field `name`: `flag`'s value (None: not given) or the
    known --preset's, which must agree -> (words, value), or None when neither says."""
    in_preset = presets[preset][name] if preset is not None else None
    if value is not None and in_preset is not None and value != in_preset:
        raise ConvertError(f"--preset {preset}: {flag} {value} disagrees with the preset's {in_preset}")
    if value is not None:
        return flag, value
    if in_preset is not None:
        return f"--preset {preset}", in_preset
    return None


def preset_entry(presets, preset, num_heads):
    """The sizes `presets` holds for `preset`, which must exist; an explicit --num-heads must
    agree with them."""
    if preset not in presets:
        raise ConvertError(f"unknown --preset {preset!r} (known: {', '.join(presets)})")
    want = presets[preset]
    if num_heads is not None and num_heads != want["num_heads"]:
        raise ConvertError(f"--preset {preset}: --num-heads {num_heads} disagrees with the preset's "
                           f"{want['num_heads']}")
    return want


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
