"""U-ViT text-to-image: presets, keys and counts of the reference, config inference and convert.py
round trips on every fixture config, and its errors."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from archs.uvit_t2i import checkpoint as arch  # noqa: E402
from archs.uvit_t2i import fixtures  # noqa: E402
from archs.uvit_t2i.reference import UViTT2I  # noqa: E402
from helpers import expect_convert_error, random_state_dict, read_with_package, run_convert  # noqa: E402


def test_presets_keys_and_counts():
    # The paper's MS-COCO models: U-ViT-S/2 45M, U-ViT-S/2 (Deep) 58M parameters.
    published = {"U-ViT-S/2-MSCOCO": 45, "U-ViT-S/2-Deep-MSCOCO": 58}
    for name, cfg in arch.PRESETS.items():
        want = arch.expected_shapes(cfg)
        with torch.device("meta"):
            sd = UViTT2I.from_config(cfg).state_dict()
        assert list(sd) == list(want), name  # same keys, official (module) order
        assert all(tuple(v.shape) == want[k] for k, v in sd.items()), name
        assert arch.infer_config(want, preset=name) == cfg, name
        assert arch.infer_config(want) == cfg, name  # the official heads for width 512, 77 tokens
        assert round(sum(v.numel() for v in sd.values()) / 1e6) == published[name], name
    small, deep = arch.PRESETS["U-ViT-S/2-MSCOCO"], arch.PRESETS["U-ViT-S/2-Deep-MSCOCO"]
    assert (small["depth"], deep["depth"]) == (12, 16)
    assert small["conv"] and not small["mlp_time_embed"] and (small["clip_dim"], small["num_clip_token"]) == (768, 77)


def test_reference_drops_the_time_and_text_tokens():
    # Tokens [time, text..., patches]: changing the text moves the output, and the output has the
    # input's shape (the first 1 + 77 tokens dropped before unpatchify).
    cfg = fixtures.CONFIGS["uvit_t2i_conv"][1]
    model = UViTT2I.from_config(cfg).double().eval()
    x, t = torch.randn(2, 4, 8, 8, dtype=torch.float64), torch.tensor([3.5, 700.0], dtype=torch.float64)
    context = torch.randn(2, 77, cfg["clip_dim"], dtype=torch.float64)
    with torch.no_grad():
        out = model(x, t, context)
        assert out.shape == x.shape
        assert not torch.allclose(out, model(x, t, context.flip(1)))


@pytest.mark.parametrize("name", list(fixtures.CONFIGS))
def test_convert_roundtrip_every_fixture_config(name, tmp_path):
    cfg = fixtures.CONFIGS[name][1]
    sd = random_state_dict(UViTT2I, cfg, seed=len(name))
    torch.save(sd, tmp_path / f"{name}.pth")
    rc, _, err = run_convert("--arch", "uvit_t2i", "--num-heads", cfg["num_heads"], tmp_path / f"{name}.pth",
                             tmp_path / f"{name}.safetensors")
    assert rc == 0, err
    tensors, meta = read_with_package(tmp_path / f"{name}.safetensors")
    want = dict(cfg, depth=cfg["depth"] - cfg["depth"] % 2)  # an odd depth builds the even one below
    assert json.loads(meta["ditrt.config"]) == want, meta
    assert set(tensors) == set(sd)
    for k, v in sd.items():
        assert np.array_equal(tensors[k], v.numpy()), k


def test_inference_errors(tmp_path):
    cfg = fixtures.CONFIGS["uvit_t2i_conv"][1]
    shapes = arch.expected_shapes(cfg)
    infer = arch.infer_config
    expect_convert_error(lambda: infer(shapes), "embed dim 32 has no official head count")
    expect_convert_error(lambda: infer(shapes, num_heads=5), "--num-heads 5 does not divide the embed dim 32")
    expect_convert_error(lambda: infer(shapes, preset="U-ViT-S/2-CIFAR10"), "unknown --preset 'U-ViT-S/2-CIFAR10'")
    no_context = {k: v for k, v in shapes.items() if not k.startswith("context_embed.")}
    expect_convert_error(lambda: infer(no_context, num_heads=2), "missing key 'context_embed.weight'",
                         "U-ViT text-to-image config")
    short = dict(shapes, pos_embed=(1, 1 + 77 + 15, 32))
    expect_convert_error(lambda: infer(short, num_heads=2), "key 'pos_embed': 93 tokens", "not a square patch grid")
    deep = arch.expected_shapes(arch.PRESETS["U-ViT-S/2-Deep-MSCOCO"])
    expect_convert_error(lambda: infer(deep, preset="U-ViT-S/2-MSCOCO"), "checkpoint has depth 16, preset has 12")
    expect_convert_error(lambda: infer(deep, num_heads=4, preset="U-ViT-S/2-Deep-MSCOCO"), "--num-heads 4 disagrees")
    # convert.py names a wrong shape with the expected and found ones.
    sd = random_state_dict(UViTT2I, cfg, seed=0)
    sd["context_embed.bias"] = torch.zeros(31)
    torch.save(sd, tmp_path / "bad.pth")
    rc, _, err = run_convert("--arch", "uvit_t2i", "--num-heads", "2", tmp_path / "bad.pth", tmp_path / "bad.safetensors")
    assert rc == 2 and "key 'context_embed.bias': expected shape [32], found [31]" in err, err
