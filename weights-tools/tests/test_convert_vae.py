"""The SD VAE decoder: keys and counts of the reference, convert.py on the diffusers and CompVis
layouts (a CompVis-layout checkpoint decoded with a functional copy of CompVis's Decoder and
compared), diffusers folders and their config.json (one decoded with diffusers' AutoencoderKL and
compared), config inference and errors."""

import json
import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("safetensors")
import torch.nn.functional as F  # noqa: E402
from safetensors.numpy import save_file as np_save_file  # noqa: E402

from archs.vae import checkpoint as vae_arch  # noqa: E402
from archs.vae.reference import VAEDecoder  # noqa: E402
from ckpt_io import read_safetensors  # noqa: E402
from helpers import expect_convert_error, expect_refused, random_state_dict, read_with_package, run_convert  # noqa: E402

# Converter round trips need what infer_config assumes: 32 GroupNorm groups, latent 32.
CFG = vae_arch.make_config(block_out_channels=[32, 64, 64], layers_per_block=1)


# --- CompVis layout, written from ldm/modules/diffusionmodules/model.py Decoder ------------------

def compvis_shapes(cfg):
    """CompVis Decoder + post_quant_conv keys -> shapes (up.(n-1) the widest; 1x1-conv attention)."""
    chans, z = cfg["block_out_channels"], cfg["latent_channels"]
    shapes = {}

    def conv(name, cout, cin, k):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin, k, k), (cout,)

    def norm(name, c):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (c,), (c,)

    def resnet(name, cin, cout):
        norm(f"{name}.norm1", cin)
        conv(f"{name}.conv1", cout, cin, 3)
        norm(f"{name}.norm2", cout)
        conv(f"{name}.conv2", cout, cout, 3)
        if cin != cout:
            conv(f"{name}.nin_shortcut", cout, cin, 1)

    block_in = chans[-1]
    conv("decoder.conv_in", block_in, z, 3)
    resnet("decoder.mid.block_1", block_in, block_in)
    norm("decoder.mid.attn_1.norm", block_in)
    for name in ("q", "k", "v", "proj_out"):
        conv(f"decoder.mid.attn_1.{name}", block_in, block_in, 1)
    resnet("decoder.mid.block_2", block_in, block_in)
    for level in reversed(range(len(chans))):
        for j in range(cfg["layers_per_block"] + 1):
            resnet(f"decoder.up.{level}.block.{j}", block_in, chans[level])
            block_in = chans[level]
        if level != 0:
            conv(f"decoder.up.{level}.upsample.conv", block_in, block_in, 3)
    norm("decoder.norm_out", block_in)
    conv("decoder.conv_out", cfg["out_channels"], block_in, 3)
    conv("post_quant_conv", z, z, 1)
    return shapes


def compvis_decode(sd, z, cfg):
    """CompVis's Decoder.forward(post_quant_conv(z)), functionally, on CompVis keys."""
    groups = cfg["norm_num_groups"]

    def conv(x, name):
        w = sd[f"{name}.weight"]
        return F.conv2d(x, w, sd[f"{name}.bias"], padding=w.shape[-1] // 2)

    def norm(x, name):
        return F.group_norm(x, groups, sd[f"{name}.weight"], sd[f"{name}.bias"], eps=1e-6)

    def resnet(x, name):
        h = conv(F.silu(norm(x, f"{name}.norm1")), f"{name}.conv1")
        h = conv(F.silu(norm(h, f"{name}.norm2")), f"{name}.conv2")
        return (conv(x, f"{name}.nin_shortcut") if f"{name}.nin_shortcut.weight" in sd else x) + h

    def attn(x, name):
        h = norm(x, f"{name}.norm")
        q, k, v = (conv(h, f"{name}.{n}") for n in "qkv")
        b, c, hh, ww = q.shape
        w_ = torch.bmm(q.reshape(b, c, hh * ww).permute(0, 2, 1), k.reshape(b, c, hh * ww)) * c ** -0.5
        h_ = torch.bmm(v.reshape(b, c, hh * ww), w_.softmax(dim=2).permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + conv(h_, f"{name}.proj_out")

    h = conv(conv(z, "post_quant_conv"), "decoder.conv_in")
    h = resnet(attn(resnet(h, "decoder.mid.block_1"), "decoder.mid.attn_1"), "decoder.mid.block_2")
    for level in reversed(range(len(cfg["block_out_channels"]))):
        for j in range(cfg["layers_per_block"] + 1):
            h = resnet(h, f"decoder.up.{level}.block.{j}")
        if level != 0:
            h = conv(F.interpolate(h, scale_factor=2.0, mode="nearest"), f"decoder.up.{level}.upsample.conv")
    return conv(F.silu(norm(h, "decoder.norm_out")), "decoder.conv_out")


def random_tensors(shapes, seed):
    gen = torch.Generator().manual_seed(seed)
    return {k: torch.randn(s, generator=gen, dtype=torch.float64) / math.sqrt(max(1, int(np.prod(s[1:]))))
            for k, s in shapes.items()}


def reference_decode(path, z):
    """Our reference VAEDecoder holding a converted file's weights."""
    tensors, meta = read_with_package(path)
    model = VAEDecoder.from_config(json.loads(meta["ditrt.config"])).double()
    model.load_state_dict({k: torch.from_numpy(v).double() for k, v in tensors.items()}, strict=True)
    with torch.no_grad():
        return model(z)


# --- keys and counts ---------------------------------------------------------------------------

def test_sd_preset_keys_and_count():
    for name, p in vae_arch.PRESETS.items():
        with torch.device("meta"):
            model = VAEDecoder(**p)
        sd = model.state_dict()
        want = vae_arch.expected_shapes(model.config)
        assert list(sd) == list(want) and all(tuple(v.shape) == want[k] for k, v in sd.items()), name
        assert vae_arch.infer_config(want, preset=name) == model.config, name
        n = sum(v.numel() for v in sd.values())
        # diffusers' SD AutoencoderKL: decoder 49,490,179 + post_quant_conv 20.
        assert n == 49_490_199, n
    assert vae_arch.infer_config(vae_arch.expected_shapes(vae_arch.PRESETS["SD-VAE-KL-f8"])) == \
        vae_arch.make_config(**vae_arch.PRESETS["SD-VAE-KL-f8"])


def test_compvis_shapes_map_onto_ours():
    for cfg in (CFG, vae_arch.make_config(**vae_arch.PRESETS["SD-VAE-KL-f8"])):
        mapped, _ = vae_arch.canonical_tensors({k: np.zeros(s, np.float32) for k, s in compvis_shapes(cfg).items()})
        want = vae_arch.expected_shapes(cfg)
        assert {k: v.shape for k, v in mapped.items()} == want


# --- convert.py --------------------------------------------------------------------------------

def test_full_sd_compvis_checkpoint(tmp_path):
    """A CompVis .ckpt of a whole SD model: the decoder computes what CompVis's computes."""
    vae = random_tensors(compvis_shapes(CFG), seed=1)
    extra = {"first_stage_model.encoder.conv_in.weight": torch.zeros(32, 3, 3, 3),
             "first_stage_model.quant_conv.weight": torch.zeros(8, 8, 1, 1),
             "model.diffusion_model.input_blocks.0.0.weight": torch.zeros(4),
             "cond_stage_model.transformer.text_model.final_layer_norm.weight": torch.zeros(4)}
    state = {f"first_stage_model.{k}": v.float() for k, v in vae.items()} | extra
    torch.save({"state_dict": state, "global_step": 470000}, tmp_path / "sd.ckpt")
    rc, out, err = run_convert("--arch", "vae", tmp_path / "sd.ckpt", tmp_path / "sd.safetensors")
    assert rc == 0, err
    assert "ignored 2 other key(s) of the full checkpoint" in out and "ignored 2 encoder / quant_conv" in out, out
    assert "mapped the CompVis layout" in out, out
    assert list(read_safetensors(tmp_path / "sd.safetensors")[0]) == list(vae_arch.expected_shapes(CFG))
    z = torch.randn(2, 4, 5, 4, dtype=torch.float64)
    want = compvis_decode({k: v.float().double() for k, v in vae.items()}, z, CFG)
    got = reference_decode(tmp_path / "sd.safetensors", z)
    rel = ((got - want).norm() / want.norm()).item()
    assert rel < 1e-12, rel


def test_diffusers_layouts(tmp_path):
    """AutoencoderKL safetensors (encoder keys dropped) and the deprecated attention names."""
    sd = {k: v.numpy() for k, v in random_state_dict(VAEDecoder, CFG, seed=2).items()}
    full = dict(sd, **{"encoder.conv_in.weight": np.zeros((32, 3, 3, 3), np.float32),
                       "quant_conv.bias": np.zeros(8, np.float32)})
    np_save_file(full, tmp_path / "diffusers.safetensors")
    renames = {"to_q": "query", "to_k": "key", "to_v": "value", "to_out.0": "proj_attn"}
    old = {}
    for k, v in sd.items():
        for new, dep in renames.items():
            k = k.replace(f"attentions.0.{new}.", f"attentions.0.{dep}.")
        old[k] = torch.from_numpy(v)
    assert "decoder.mid_block.attentions.0.proj_attn.weight" in old
    torch.save(old, tmp_path / "diffusion_pytorch_model.bin")
    for src in ("diffusers.safetensors", "diffusion_pytorch_model.bin"):
        rc, out, err = run_convert("--arch", "vae", "--preset", "SD-VAE-KL-f8", tmp_path / src, tmp_path / "d.safetensors")
        assert rc == 2 and "--preset SD-VAE-KL-f8: checkpoint has block_out_channels [32, 64, 64]" in err, err
        rc, out, err = run_convert("--arch", "vae", tmp_path / src, tmp_path / "d.safetensors")
        assert rc == 0, (src, err)
        tensors, meta = read_with_package(tmp_path / "d.safetensors")
        assert json.loads(meta["ditrt.config"]) == CFG, meta
        assert set(tensors) == set(sd), src
        for k, v in sd.items():
            assert np.array_equal(tensors[k], v), (src, k)


def test_errors(tmp_path):
    shapes = vae_arch.expected_shapes(CFG)
    infer = vae_arch.infer_config
    expect_convert_error(lambda: infer(shapes, num_heads=8), "single head")
    expect_convert_error(lambda: infer(shapes, preset="SD-VAE"), "unknown --preset 'SD-VAE'")
    expect_convert_error(lambda: infer({"decoder.conv_in.weight": (64, 4, 3, 3)}), "not a KL VAE decoder")
    odd = vae_arch.expected_shapes(vae_arch.make_config([16, 32], norm_num_groups=8))
    expect_convert_error(lambda: infer(odd), "channels [16] are not multiples of 32 GroupNorm groups")
    sd = {k: torch.zeros(s) for k, s in shapes.items()}
    del sd["decoder.up_blocks.2.resnets.0.conv_shortcut.bias"]
    torch.save(sd, tmp_path / "noshortcut.pt")
    rc, _, err = run_convert("--arch", "vae", tmp_path / "noshortcut.pt", tmp_path / "never.safetensors")
    assert rc == 2 and "missing key 'decoder.up_blocks.2.resnets.0.conv_shortcut.bias'" in err, err


# --- diffusers folders: config.json ------------------------------------------------------------

def diffusers_folder(folder, config, weights="safetensors", seed=3):
    """A diffusers AutoencoderKL folder holding CFG's decoder and `config` as config.json."""
    folder.mkdir(exist_ok=True)
    sd = random_state_dict(VAEDecoder, CFG, seed)
    if weights == "safetensors":
        np_save_file({k: v.numpy() for k, v in sd.items()}, folder / "diffusion_pytorch_model.safetensors")
    else:
        torch.save(sd, folder / "diffusion_pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps(dict({"_class_name": "AutoencoderKL"}, **config)))
    return folder


def test_config_json_matches_diffusers_decode(tmp_path):
    """A folder saved by diffusers with 8 GroupNorm groups (not in the weights; 32 would pass the
    shape checks and decode wrong) converts with 8 and decodes as diffusers' AutoencoderKL does."""
    AutoencoderKL = pytest.importorskip("diffusers").AutoencoderKL
    blocks = CFG["block_out_channels"]
    vae = AutoencoderKL(block_out_channels=blocks, layers_per_block=CFG["layers_per_block"], norm_num_groups=8,
                        sample_size=16, scaling_factor=0.13025, down_block_types=("DownEncoderBlock2D",) * len(blocks),
                        up_block_types=("UpDecoderBlock2D",) * len(blocks))
    torch.manual_seed(4)
    with torch.no_grad():
        for p in vae.parameters():
            p.copy_(torch.randn_like(p) / math.sqrt(max(1, p[0].numel())))
    vae.save_pretrained(tmp_path / "vae")
    rc, _, err = run_convert("--arch", "vae", tmp_path / "vae", tmp_path / "vae.safetensors")
    assert rc == 0, err
    assert "set norm_num_groups 8, latent_size 4 (from sample_size 16); the weights agree on block_out_channels, " \
           "layers_per_block, latent_channels, out_channels" in err, err
    assert "note: config.json has scaling_factor 0.13025; ditrt decodes latents / 0.18215" in err, err
    meta = read_with_package(tmp_path / "vae.safetensors")[1]
    assert json.loads(meta["ditrt.config"]) == dict(CFG, norm_num_groups=8, latent_size=4), meta
    z = torch.randn(2, 4, 4, 4, dtype=torch.float64)
    with torch.no_grad():
        want = vae.double().decode(z).sample
    got = reference_decode(tmp_path / "vae.safetensors", z)
    rel = ((got - want).norm() / want.norm()).item()
    assert rel < 1e-6, rel  # the stored f32 weights against diffusers' own f32 ones, run in f64


@pytest.mark.parametrize("config, needle", [
    ({"layers_per_block": 2}, "config.json says layers_per_block 2, the weights have 1 (decoder.up_blocks.0.resnets.*)"),
    ({"block_out_channels": [32, 64, 128]},
     "config.json says block_out_channels [32, 64, 128], the weights have [32, 64, 64] (decoder.up_blocks.*"),
    ({"latent_channels": 16}, "config.json says latent_channels 16, the weights have 4 (decoder.conv_in.weight)"),
    ({"out_channels": 1}, "config.json says out_channels 1, the weights have 3 (decoder.conv_out.weight)"),
    ({"norm_num_groups": 24}, "channels [32, 64, 64] are not multiples of 24 GroupNorm groups (config.json norm_num_groups)"),
    ({"sample_size": 18}, "config.json sample_size 18 is not a multiple of 4"),
    ({"_class_name": "UNet2DModel"}, "config.json: a config for UNet2DModel, not AutoencoderKL"),
])
def test_config_json_disagrees(tmp_path, config, needle):
    folder = diffusers_folder(tmp_path / "vae", config)
    expect_refused(["--arch", "vae", folder], tmp_path / "never.safetensors", needle)
    # the weights file named instead of its folder: the same config.json
    expect_refused(["--arch", "vae", folder / "diffusion_pytorch_model.safetensors"], tmp_path / "never.safetensors", needle)


def test_folder_inputs_and_flags(tmp_path):
    folder = tmp_path / "vae"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"norm_num_groups": 8, "sample_size": 64}))
    expect_refused(["--arch", "vae", folder], tmp_path / "never.safetensors",
                   "vae: a folder without diffusion_pytorch_model.safetensors or diffusion_pytorch_model.bin")
    diffusers_folder(folder, {"norm_num_groups": 8, "sample_size": 64}, weights="bin")
    rc, _, err = run_convert("--arch", "vae", folder, tmp_path / "out.safetensors")
    assert rc == 0 and "set norm_num_groups 8, latent_size 16 (from sample_size 64)" in err, err
    assert json.loads(read_with_package(tmp_path / "out.safetensors")[1]["ditrt.config"]) == \
        dict(CFG, norm_num_groups=8, latent_size=16)
    # a flag beats config.json, with a note
    rc, _, err = run_convert("--arch", "vae", "--groups", "16", folder, tmp_path / "out.safetensors")
    assert rc == 0 and "note: --groups sets norm_num_groups 16 over config.json's norm_num_groups 8" in err, err
    assert json.loads(read_with_package(tmp_path / "out.safetensors")[1]["ditrt.config"]) == \
        dict(CFG, norm_num_groups=16, latent_size=16)
    expect_refused(["--arch", "vae", "--groups", "12", folder], tmp_path / "never.safetensors",
                   "channels [32, 64, 64] are not multiples of 12 GroupNorm groups (--groups)")
