"""convert.py end to end (on DiT checkpoints: containers, dtypes, errors), DiT's config
inference and presets, and the shared reference pieces."""

import argparse
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
from safetensors.numpy import save_file as np_save_file  # noqa: E402

from archs import ARCHS  # noqa: E402
from archs.dit.checkpoint import PRESETS, expected_shapes, infer_config, make_config, sincos_2d_np  # noqa: E402
from archs.dit.reference import DiT  # noqa: E402
from helpers import TOOLS, expect_convert_error, expect_refused, random_state_dict, read_with_package, run_convert  # noqa: E402
from reference.common import sincos_2d, timestep_features, unpatchify  # noqa: E402

CFG = make_config(input_size=8, patch_size=2, in_channels=4, hidden_size=64, depth=2, num_heads=4,
                  num_classes=10, learn_sigma=True)


def dit_state_dict(cfg, seed=0):
    return random_state_dict(DiT, cfg, seed)


# --- round trips -------------------------------------------------------------------------------

def test_pt_roundtrip(tmp_path):
    sd = dit_state_dict(CFG)
    torch.save(sd, tmp_path / "a.pt")
    rc, out, err = run_convert("--arch", "dit", "--num-heads", "4", tmp_path / "a.pt", tmp_path / "a.safetensors")
    assert rc == 0, err
    tensors, meta = read_with_package(tmp_path / "a.safetensors")
    assert json.loads(meta["ditrt.config"]) == CFG, meta
    assert list(json.loads(meta["ditrt.config"])) == list(CFG)  # key order as documented
    assert set(tensors) == set(sd)
    for k, v in sd.items():
        assert tensors[k].dtype == np.float32 and np.array_equal(tensors[k], v.numpy()), k


def test_safetensors_roundtrip_and_wrappers(tmp_path):
    sd = dit_state_dict(CFG, seed=1)
    np_save_file({k: v.numpy() for k, v in sd.items()}, tmp_path / "b.safetensors")
    other = dit_state_dict(CFG, seed=2)
    torch.save({"model": other, "ema": sd}, tmp_path / "b_wrapped.pt")  # "ema" wins over "model"
    torch.save({"model": sd}, tmp_path / "b_model.pt")
    for src in ("b.safetensors", "b_wrapped.pt", "b_model.pt"):
        rc, _, err = run_convert("--arch", "dit", "--num-heads", "4", tmp_path / src, tmp_path / "b_out.safetensors")
        assert rc == 0, (src, err)
        tensors, meta = read_with_package(tmp_path / "b_out.safetensors")
        assert json.loads(meta["ditrt.config"]) == CFG
        for k, v in sd.items():
            assert np.array_equal(tensors[k], v.numpy()), (src, k)


def test_safetensors_input_needs_no_torch(tmp_path):
    sd = dit_state_dict(CFG, seed=4)
    np_save_file({k: v.numpy() for k, v in sd.items()}, tmp_path / "d.safetensors")
    code = ("import sys; sys.modules['torch'] = None; sys.path.insert(0, sys.argv[1]); import convert; "
            "sys.exit(convert.main(sys.argv[2:]))")  # importing torch would now raise
    r = subprocess.run([sys.executable, "-c", code, TOOLS, "--arch", "dit", "--num-heads", "4", "--dtype", "bf16",
                        tmp_path / "d.safetensors", tmp_path / "d_out.safetensors"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    tensors, _ = read_with_package(tmp_path / "d_out.safetensors", framework="pt")
    for k, v in sd.items():
        assert torch.equal(tensors[k], v.to(torch.bfloat16)), k


def test_checkpoint_modules_need_no_torch():
    """convert.py's side of every arch package imports without torch (reference.py and
    fixtures.py beside it need it)."""
    code = ("import sys; sys.modules['torch'] = None; sys.path.insert(0, sys.argv[1]); from archs import get_arch; "
            "[get_arch(a) for a in sys.argv[2:]]")
    r = subprocess.run([sys.executable, "-c", code, TOOLS, *ARCHS], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_learn_sigma_false_and_half_dtypes(tmp_path):
    cfg = dict(CFG, learn_sigma=False, num_heads=2)
    sd = dit_state_dict(cfg, seed=3)
    torch.save({k: v.to(torch.bfloat16) for k, v in sd.items()}, tmp_path / "c.pt")  # bf16 input
    rc, _, err = run_convert("--arch", "dit", "--num-heads", "2", "--dtype", "bf16", tmp_path / "c.pt", tmp_path / "c.safetensors")
    assert rc == 0, err
    tensors, meta = read_with_package(tmp_path / "c.safetensors", framework="pt")
    assert json.loads(meta["ditrt.config"]) == cfg
    for k, v in sd.items():
        assert tensors[k].dtype == torch.bfloat16 and torch.equal(tensors[k], v.to(torch.bfloat16)), k
    # f16 from a bf16 safetensors input (read without torch by ckpt_io)
    rc, _, err = run_convert("--arch", "dit", "--num-heads", "2", "--dtype", "f16", tmp_path / "c.safetensors", tmp_path / "c16.safetensors")
    assert rc == 0, err
    tensors, _ = read_with_package(tmp_path / "c16.safetensors")
    for k, v in sd.items():
        want = v.to(torch.bfloat16).float().numpy().astype(np.float16)
        assert tensors[k].dtype == np.float16 and np.array_equal(tensors[k], want), k


def test_bf16_rounding_matches_torch():
    from ckpt_io import bf16_to_f32, f32_to_bf16
    x = np.concatenate([np.random.default_rng(0).standard_normal(100000).astype(np.float32) * 10,
                        np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 3.4e38, 1e-40], np.float32)])
    ours = f32_to_bf16(x).view(np.uint16)
    theirs = torch.from_numpy(x).to(torch.bfloat16).view(torch.int16).numpy().view(np.uint16)
    finite = ~np.isnan(x)
    assert np.array_equal(ours[finite], theirs[finite])
    assert np.isnan(bf16_to_f32(ours[~finite])).all()


# --- errors ------------------------------------------------------------------------------------

def expect_error(tmp_path, name, *needles, extra=()):
    """convert.py --arch dit on tmp_path/name is refused in one line naming every needle."""
    return expect_refused(["--arch", "dit", "--num-heads", "4", *extra, tmp_path / name],
                          tmp_path / "never.safetensors", *needles)


def test_missing_unexpected_wrong_shape(tmp_path):
    sd = dit_state_dict(CFG)
    bad = dict(sd)
    del bad["blocks.1.mlp.fc2.bias"]
    torch.save(bad, tmp_path / "missing.pt")
    expect_error(tmp_path, "missing.pt", "missing.pt", "missing key 'blocks.1.mlp.fc2.bias'", "[64]")
    np_save_file({k: v.numpy() for k, v in sd.items() if not k.startswith("blocks.1.")}
                 | {"blocks.1.attn.qkv.weight": sd["blocks.1.attn.qkv.weight"].numpy()}, tmp_path / "trunc.safetensors")
    expect_error(tmp_path, "trunc.safetensors", "missing key 'blocks.1.attn.qkv.bias'", "more missing")
    torch.save(dict(sd, foo=torch.zeros(3)), tmp_path / "unexpected.pt")
    expect_error(tmp_path, "unexpected.pt", "unexpected key 'foo'", "[3]")
    torch.save(dict(sd, **{"blocks.0.attn.proj.weight": torch.zeros(64, 63)}), tmp_path / "shape.pt")
    expect_error(tmp_path, "shape.pt", "'blocks.0.attn.proj.weight'", "expected shape [64, 64], found [64, 63]")
    torch.save({k: v for k, v in sd.items() if k != "pos_embed"}, tmp_path / "nopos.pt")
    expect_error(tmp_path, "nopos.pt", "missing key 'pos_embed'")


class _RunsCode:
    """Unpickling this runs a shell command (touch `marker`): what weights_only loading must refuse."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_unreadable_inputs(tmp_path):
    sd = dit_state_dict(CFG)
    np_save_file({k: v.numpy() for k, v in sd.items()}, tmp_path / "full.safetensors")
    data = open(tmp_path / "full.safetensors", "rb").read()
    open(tmp_path / "cut.safetensors", "wb").write(data[: len(data) // 2])
    expect_error(tmp_path, "cut.safetensors", "cut.safetensors", "not a readable safetensors file")
    torch.save(sd, tmp_path / "full.pt")
    data = open(tmp_path / "full.pt", "rb").read()
    open(tmp_path / "cut.pt", "wb").write(data[: len(data) // 2])
    expect_error(tmp_path, "cut.pt", "cut.pt", "cannot read")
    # official training checkpoints also pickle argparse args: not loadable with weights_only
    torch.save({"ema": sd, "args": argparse.Namespace(model="DiT-XL/2")}, tmp_path / "code.pt")
    expect_error(tmp_path, "code.pt", "code.pt", "refused", "arbitrary code")
    # a pickle that would run a command on load: refused, and the command never ran
    torch.save({"model": sd, "payload": _RunsCode(tmp_path / "code-ran")}, tmp_path / "evil.pt")
    expect_error(tmp_path, "evil.pt", "evil.pt", "refused", "arbitrary code")
    assert not os.path.exists(tmp_path / "code-ran"), "loading the checkpoint ran its embedded command"
    expect_error(tmp_path, "nothere.pt", "nothere.pt", "no such file")
    expect_error(tmp_path, "full.pt", "unknown --arch 'nope'", "(known: ", " dit,", extra=("--arch", "nope"))
    expect_error(tmp_path, "full.pt", "--num-heads 5", extra=("--num-heads", "5"))
    expect_error(tmp_path, "full.pt", "unknown --preset 'DiT-M/2'", extra=("--preset", "DiT-M/2"))
    expect_error(tmp_path, "full.pt", "--groups does not apply to --arch dit", extra=("--groups", "8"))
    expect_error(tmp_path, "full.pt", "--preset DiT-S/2: checkpoint has depth 2, preset has 12",
                 extra=("--preset", "DiT-S/2"))


# --- config inference, presets -----------------------------------------------------------------

def test_presets_and_default_heads():
    for name, p in PRESETS.items():
        cfg = make_config(input_size=32, in_channels=4, num_classes=1000, **p)
        shapes = expected_shapes(cfg)
        assert infer_config(shapes, preset=name) == cfg, name
        assert infer_config(shapes) == cfg, name  # official heads by width
        for other, q in PRESETS.items():
            if (q["depth"], q["hidden_size"], q["patch_size"]) != (p["depth"], p["hidden_size"], p["patch_size"]):
                expect_convert_error(lambda: infer_config(shapes, preset=other), other)
    expect_convert_error(lambda: infer_config(expected_shapes(CFG)), "--num-heads")  # width 64: no official count
    xl = expected_shapes(make_config(64, 2, 4, 1152, 28, 16))
    assert infer_config(xl, preset="DiT-XL/2")["input_size"] == 64
    expect_convert_error(lambda: infer_config(xl, num_heads=8, preset="DiT-XL/2"), "--num-heads 8")


def test_reference_keys_equal_official_layout():
    for name, p in PRESETS.items():
        with torch.device("meta"):
            model = DiT(input_size=32, **p)
        sd = model.state_dict()
        want = expected_shapes(model.config)
        assert list(sd) == list(want), name  # same keys, same (module) order
        assert all(tuple(v.shape) == want[k] for k, v in sd.items()), name
    with torch.device("meta"):
        n = sum(v.numel() for v in DiT.from_preset("DiT-XL/2", input_size=32).state_dict().values())
    assert round(n / 1e6, 1) == 675.1, n


# --- reference model pieces ----------------------------------------------------------------------

def test_pos_embed_timestep_unpatchify():
    d, g = 32, 5
    pe = sincos_2d(d, g).numpy()
    omega = 10000.0 ** (-np.arange(d // 4) / (d / 4))
    for h in range(g):
        for w in range(g):
            row = pe[h * g + w]  # [sin(w om), cos(w om), sin(h om), cos(h om)]
            assert np.allclose(row, np.concatenate([np.sin(w * omega), np.cos(w * omega),
                                                    np.sin(h * omega), np.cos(h * omega)]))
    model = DiT.from_config(CFG)
    assert torch.equal(model.pos_embed[0], sincos_2d(64, 4).float())
    t = torch.tensor([0.0, 3.5, 999.0], dtype=torch.float64)
    f = timestep_features(t, 256).numpy()
    freqs = np.exp(-math.log(10000) * np.arange(128) / 128)
    assert np.allclose(f, np.concatenate([np.cos(t.numpy()[:, None] * freqs), np.sin(t.numpy()[:, None] * freqs)], 1))
    p, c, g = 2, 3, 4
    tok = torch.randn(2, g * g, p * p * c)
    img = unpatchify(tok, p, c)
    for h, w, i, j, ch in [(0, 0, 0, 0, 0), (1, 2, 0, 1, 2), (3, 1, 1, 0, 1), (2, 3, 1, 1, 0)]:
        assert img[1, ch, h * p + i, w * p + j] == tok[1, h * g + w, (i * p + j) * c + ch]


def test_numpy_position_table_matches_reference():
    """The torch-free table convert.py builds for diffusers inputs equals the reference's."""
    for d, g in [(64, 4), (1152, 16)]:
        assert np.allclose(sincos_2d_np(d, g), sincos_2d(d, g).numpy(), rtol=0, atol=1e-13)  # ulps of pow()
