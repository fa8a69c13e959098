"""convert.py --arch dit on a diffusers DiTTransformer2DModel checkpoint and its config.json
(needs torch + diffusers)."""

import json
import os
from unittest import mock

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("diffusers")
pytest.importorskip("safetensors")
from safetensors.torch import save_file  # noqa: E402

from archs.dit.reference import DiT  # noqa: E402
from helpers import expect_refused, read_with_package, run_convert  # noqa: E402
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



def test_config_json_sets_heads(tmp_path):
    """The folder as IN: heads from config.json, --num-heads over it with a note."""
    folder = tmp_path / "dit"
    save_diffusers(diffusers_model(), folder)
    out = tmp_path / "dit.safetensors"
    rc, _, se = run_convert("--arch", "dit", folder, out)
    assert rc == 0, se
    assert se == (f"read {folder}/config.json: set input_size 8 (from sample_size 8), num_heads 2 (from "
                  "num_attention_heads 2); the weights agree on attention_head_dim, patch_size, in_channels, "
                  "out_channels, num_embeds_ada_norm, num_layers"), se
    assert json.loads(read_with_package(out)[1]["ditrt.config"])["num_heads"] == 2
    rc, _, se = run_convert("--arch", "dit", "--num-heads", "4", folder, out)
    assert rc == 0 and "note: --num-heads sets num_heads 4 over config.json's num_attention_heads 2" in se, se
    assert json.loads(read_with_package(out)[1]["ditrt.config"])["num_heads"] == 4


@pytest.mark.parametrize("change, needle", [
    ({"attention_head_dim": 48},
     "config.json says num_attention_heads 2 x attention_head_dim 48 = 96, the weights have 64 (x_embedder.proj.weight)"),
    ({"num_layers": 3}, "config.json says num_layers 3, the weights have 2 (blocks.*)"),
    ({"out_channels": 4}, "config.json says out_channels 4, the weights have 8 (final_layer.linear.weight)"),
    ({"num_embeds_ada_norm": 1000}, "config.json says num_embeds_ada_norm 1000, the weights have 10"),
    ({"patch_size": 4}, "config.json says patch_size 4, the weights have 2"),
])
def test_config_json_disagrees(tmp_path, change, needle):
    folder = tmp_path / "dit"
    save_diffusers(diffusers_model(), folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(dict(config, **change)))
    expect_refused(["--arch", "dit", folder], tmp_path / "never.safetensors", needle)
