"""convert.py --arch dit on a diffusers DiTTransformer2DModel checkpoint (needs torch + diffusers)."""

import json
import os
from unittest import mock

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("safetensors")
from safetensors.torch import save_file  # noqa: E402

from archs.dit.reference import DiT  # noqa: E402
from helpers import read_with_package, run_convert  # noqa: E402
from reference.common import timestep_features  # noqa: E402

DIFF_CFG = dict(sample_size=8, patch_size=2, in_channels=4, out_channels=8, num_layers=2,
                num_attention_heads=2, attention_head_dim=32, num_embeds_ada_norm=10,
                norm_eps=1e-6)  # its default 1e-5 applies to the MLP LayerNorm only; official DiT: 1e-6


def diffusers_model(seed=0):
    from diffusers import DiTTransformer2DModel
    torch.manual_seed(seed)
    m = DiTTransformer2DModel(**DIFF_CFG).double().eval()
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn_like(p) * 0.2)
        # every block holds a copy of the embedders; in real checkpoints they are equal
        shared = m.transformer_blocks[0].norm1.emb.state_dict()
        for b in m.transformer_blocks[1:]:
            b.norm1.emb.load_state_dict(shared)
    return m


def save_diffusers(model, folder, config=True):
    os.makedirs(folder, exist_ok=True)
    sd = {k: v.float().contiguous() for k, v in model.state_dict().items()}
    path = os.path.join(folder, "diffusion_pytorch_model.safetensors")
    save_file(sd, path)
    if config:
        with open(os.path.join(folder, "config.json"), "w") as f:
            json.dump(dict(model.config), f)
    return path, sd


def test_forward_matches_diffusers(tmp_path):
    import diffusers.models.embeddings as E
    model = diffusers_model()
    src, sd = save_diffusers(model, tmp_path / "diffusers_dit")
    # the model as it runs in f64, but from the f32-stored weights
    model.load_state_dict({k: v.double() for k, v in sd.items()})
    out = tmp_path / "diffusers_dit.safetensors"
    rc, so, se = run_convert("--arch", "dit", "--num-heads", "2", src, out)
    assert rc == 0, se
    assert "frequency shift 1" in so, so
    w, meta = read_with_package(out, framework="pt")
    cfg = json.loads(meta["ditrt.config"])
    assert cfg == {"arch": "dit", "input_size": 8, "patch_size": 2, "in_channels": 4, "hidden_size": 64,
                   "depth": 2, "num_heads": 2, "mlp_ratio": 4.0, "num_classes": 10, "learn_sigma": True}, cfg
    table = model.pos_embed.pos_embed  # diffusers' own (non-persistent) table, f32-rounded
    assert table.shape == w["pos_embed"].shape and (table - w["pos_embed"].double()).abs().max() < 1e-6
    model.pos_embed.pos_embed = w["pos_embed"].double()  # same f32 rounding on both sides
    ref = DiT.from_config(cfg).double()
    ref.load_state_dict(w, strict=True)
    torch.manual_seed(1)
    x = torch.randn(3, 4, 8, 8, dtype=torch.float64)
    t = torch.tensor([0, 17, 999])
    y = torch.tensor([0, 9, 10])  # 10 = the null (unconditional) class
    # diffusers' features with downscale_freq_shift 0, but in f64 (diffusers builds the frequencies
    # in f32, which alone gives ~1e-5 at t = 999): [cos, sin] as flip_sin_to_cos=True gives
    def shift0(timesteps, dim, flip_sin_to_cos=False, downscale_freq_shift=1, scale=1, max_period=10000):
        assert flip_sin_to_cos and downscale_freq_shift == 1 and scale == 1 and max_period == 10000
        return timestep_features(timesteps.double(), dim, max_period)
    with mock.patch.object(E, "get_timestep_embedding", shift0), torch.no_grad():
        want = model(x, timestep=t, class_labels=y).sample
    with torch.no_grad():
        got = ref(x, t.double(), y)
    rel = ((got - want).abs().max() / want.abs().max()).item()
    assert rel < 1e-10, rel
    with torch.no_grad():  # and with diffusers' own shift 1 they do differ (the note is real)
        unpatched = model(x, timestep=t, class_labels=y).sample
    assert ((unpatched - want).abs().max() / want.abs().max()).item() > 1e-6


def test_input_size_needed(tmp_path):
    src, _ = save_diffusers(diffusers_model(), tmp_path / "diffusers_noconfig", config=False)
    out = tmp_path / "noconfig.safetensors"
    rc, _, se = run_convert("--arch", "dit", "--num-heads", "2", src, out)
    assert rc == 2 and "sample_size" in se and not os.path.exists(out), se
    assert len(se.splitlines()) == 1, se


def test_embedder_copy_differs(tmp_path):
    model = diffusers_model()
    with torch.no_grad():
        model.transformer_blocks[1].norm1.emb.timestep_embedder.linear_2.bias[0] += 1
    src, _ = save_diffusers(model, tmp_path / "diffusers_bad")
    out = tmp_path / "bad.safetensors"
    rc, _, se = run_convert("--arch", "dit", "--num-heads", "2", src, out)
    assert rc == 2 and "block 1" in se and "differs from block 0" in se and not os.path.exists(out), se
    assert len(se.splitlines()) == 1, se

