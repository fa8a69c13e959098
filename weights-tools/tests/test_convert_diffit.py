"""Latent DiffiT (convert.py with the official relative_position_index buffers) and image-space
DiffiT: keys and counts of the references, window order, config inference and errors."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
from safetensors.numpy import save_file as np_save_file  # noqa: E402

from archs.diffit import checkpoint as diffit_arch  # noqa: E402
from archs.diffit import fixtures as diffit_fixtures  # noqa: E402
from archs.diffit.reference import DiffiT  # noqa: E402
from archs.diffit_unet import checkpoint as unet_arch  # noqa: E402
from archs.diffit_unet import fixtures as unet_fixtures  # noqa: E402
from archs.diffit_unet.reference import DiffiTUNet, from_windows, to_windows  # noqa: E402
from ckpt_io import read_safetensors  # noqa: E402
from helpers import expect_convert_error, random_state_dict, read_with_package, run_convert  # noqa: E402

INDEX = diffit_arch.INDEX_SUFFIX


def official_index(window):
    """DiffiTAttention.__init__'s buffer, written as diffit.py computes it."""
    coords = torch.stack(torch.meshgrid(torch.arange(window), torch.arange(window), indexing="ij")).flatten(1)
    rel = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0).contiguous()
    rel[:, :, 0] += window - 1
    rel[:, :, 1] += window - 1
    rel[:, :, 0] *= 2 * window - 1
    return rel.sum(-1).numpy()


# --- keys, counts, index -----------------------------------------------------------------------

def test_relative_position_index_is_the_official_one():
    for w in (1, 2, 3, 16, 32):
        assert np.array_equal(diffit_arch.relative_position_index(w), official_index(w)), w


def test_released_model_keys_and_count():
    with torch.device("meta"):
        model = DiffiT.from_preset("DiffiT-XL/2", input_size=32)
    sd = model.state_dict()
    want = diffit_arch.expected_shapes(model.config)
    params = [k for k in sd if not k.endswith(INDEX)]
    assert list(params) == list(want) and all(tuple(sd[k].shape) == want[k] for k in params)
    # The index buffer follows its table in the official state_dict.
    keys = list(sd)
    assert keys[keys.index("blocks.3.attn.relative_position_bias_table") + 1] == f"blocks.3{INDEX}"
    # The paper's 561.3M is model.parameters(): pos_embed and the tables in, the index buffers out.
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 561_330_144 and round(n_params / 1e6, 1) == 561.3, n_params
    assert sum(v.numel() for v in sd.values()) == n_params + 28 * 256 * 256
    assert diffit_arch.infer_config(want) == model.config  # heads from the table
    assert diffit_arch.infer_config(want, num_heads=16, preset="DiffiT-XL/2") == model.config


def test_unet_reference_keys():
    configs = [c for _, c in unet_fixtures.CONFIGS.values()]
    configs.append(unet_arch.make_config(**unet_arch.PRESETS["DiffiT-CIFAR10"]))
    for cfg in configs:
        with torch.device("meta"):
            sd = DiffiTUNet.from_config(cfg).state_dict()  # its index buffers are not persistent
        want = unet_arch.expected_shapes(cfg)
        assert list(sd) == list(want) and all(tuple(v.shape) == want[k] for k, v in sd.items()), cfg


def test_window_order():
    b, c, s, w = 2, 3, 8, 4
    x = torch.randn(b, c, s, s)
    rows = to_windows(x, w)
    assert torch.equal(from_windows(rows, b, s, s, w), x)
    for (bi, wy, wx, iy, ix) in [(0, 0, 1, 2, 3), (1, 1, 0, 3, 1), (1, 1, 1, 0, 0)]:
        window = (bi * (s // w) + wy) * (s // w) + wx  # windows row-major over the grid
        assert torch.equal(rows[window, iy * w + ix], x[bi, :, wy * w + iy, wx * w + ix])


# --- convert.py --------------------------------------------------------------------------------

def random_official_state_dict(cfg, seed):
    """A checkpoint as diffit.py saves it: parameters plus the int64 index buffers."""
    return random_state_dict(DiffiT, cfg, seed)


@pytest.mark.parametrize("name", diffit_fixtures.CONFIGS)
def test_convert_roundtrip_drops_checked_buffers(name, tmp_path):
    cfg = diffit_fixtures.CONFIGS[name][1]
    sd = random_official_state_dict(cfg, seed=len(name))
    assert sd[f"blocks.0{INDEX}"].dtype == torch.int64
    torch.save(sd, tmp_path / f"{name}.pt")
    np_save_file({k: v.numpy() for k, v in sd.items()}, tmp_path / f"{name}_in.safetensors")
    out_path = tmp_path / f"{name}.safetensors"
    for src in (f"{name}.pt", f"{name}_in.safetensors"):
        rc, out, err = run_convert("--arch", "diffit", tmp_path / src, out_path)
        assert rc == 0, (src, err)
        assert f"dropped {cfg['depth']} relative_position_index buffer(s)" in out, out
        tensors, meta = read_with_package(out_path)
        assert json.loads(meta["ditrt.config"]) == cfg, (src, meta)
        assert list(read_safetensors(out_path)[0]) == list(diffit_arch.expected_shapes(cfg)), src
        for k, v in tensors.items():
            assert np.array_equal(v, sd[k].numpy()), (src, k)


def test_convert_errors(tmp_path):
    cfg = diffit_fixtures.CONFIGS["diffit_p2"][1]
    sd = random_official_state_dict(cfg, seed=0)
    bad = dict(sd)
    bad[f"blocks.1{INDEX}"] = bad[f"blocks.1{INDEX}"].flip(0)
    torch.save(bad, tmp_path / "badindex.pt")
    rc, _, err = run_convert("--arch", "diffit", tmp_path / "badindex.pt", tmp_path / "never.safetensors")
    assert rc == 2 and f"'blocks.1{INDEX}': not the Swin relative position index of a 4x4 window" in err, err
    shapes = diffit_arch.expected_shapes(cfg)
    infer = diffit_arch.infer_config
    expect_convert_error(lambda: infer(shapes, num_heads=4), "--num-heads 4 disagrees", "3 heads")
    expect_convert_error(lambda: infer(shapes, preset="DiffiT-XL/2"), "--preset DiffiT-XL/2: checkpoint has")
    expect_convert_error(lambda: infer(shapes, preset="DiT-XL/2"), "unknown --preset 'DiT-XL/2'")
    table = "blocks.0.attn.relative_position_bias_table"
    expect_convert_error(lambda: infer(dict(shapes, **{table: (25, 3)})), "25 rows, expected (2*4-1)^2 = 49")
    expect_convert_error(lambda: infer({k: v for k, v in shapes.items() if k != table}), f"missing key {table!r}")
    # A table that disagrees between blocks is reported by its official name.
    torch.save(dict(sd, **{"blocks.1.attn.relative_position_bias_table": torch.zeros(49, 2)}), tmp_path / "heads.pt")
    rc, _, err = run_convert("--arch", "diffit", tmp_path / "heads.pt", tmp_path / "never.safetensors")
    assert rc == 2 and "'blocks.1.attn.relative_position_bias_table': expected shape [49, 3], found [49, 2]" in err, err
