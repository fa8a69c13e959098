"""CLIP text encoder: keys against transformers' CLIPTextModel, and convert.py on transformers
folders (CLIPTextModel or a whole CLIPModel, safetensors or .bin, the tokenizer beside the weights
or from --tokenizer) and its one-line refusals. The vocabulary here is a synthetic one of CLIP's
size (49408 ids); the real one is not needed."""

import gzip
import json
import os

import numpy as np
import pytest

from archs.clip_text import checkpoint as clip_arch
from archs.clip_text.vocab import NUM_MERGES, merges_text, write_tokenizer_folder
from ckpt_io import write_safetensors
from helpers import expect_refused, read_with_package, run_convert

MERGES = [(f"x{i}", "y</w>") for i in range(NUM_MERGES)]
TINY = clip_arch.make_config(vocab_size=49408, width=8, layers=2, heads=2, intermediate=12, max_positions=77)


def hf_config(cfg, **changes):
    """transformers' CLIPTextConfig fields for `cfg`."""
    values = {"model_type": "clip_text_model", "vocab_size": cfg["vocab_size"], "hidden_size": cfg["width"],
              "num_hidden_layers": cfg["layers"], "num_attention_heads": cfg["heads"],
              "intermediate_size": cfg["intermediate"], "max_position_embeddings": cfg["max_positions"],
              "hidden_act": cfg["act"], "layer_norm_eps": cfg["eps"]}
    values.update(changes)
    return values


def clip_folder(tmp_path, cfg=TINY, whole=False, tokenizer=True, config=None, drop=(), seed=0):
    """A transformers model folder: model.safetensors (text_model.* with the int64 position_ids
    buffer; a whole CLIPModel adds the vision tower and projections), config.json (a CLIPModel's
    nests the text values under text_config) and the tokenizer files."""
    folder = tmp_path / ("clip" if whole else "clip_text")
    folder.mkdir()
    rng = np.random.default_rng(seed)
    tensors = {k: rng.standard_normal(s).astype(np.float32) for k, s in clip_arch.expected_shapes(cfg).items()
               if k not in drop}
    tensors["text_model.embeddings.position_ids"] = np.arange(cfg["max_positions"], dtype=np.int64)[None]
    config = config if config is not None else hf_config(cfg)
    if whole:
        tensors.update({"vision_model.embeddings.class_embedding": np.zeros(4, np.float32),
                        "visual_projection.weight": np.zeros((3, 4), np.float32),
                        "text_projection.weight": np.zeros((3, cfg["width"]), np.float32),
                        "logit_scale": np.zeros((), np.float32)})
        config = {"model_type": "clip", "text_config": config, "vision_config": {"hidden_size": 4}}
    write_safetensors(str(folder / "model.safetensors"), tensors)
    (folder / "config.json").write_text(json.dumps(config))
    if tokenizer:
        write_tokenizer_folder(MERGES, str(folder))
    return folder, tensors


def check_output(out, tensors, cfg):
    got, meta = read_with_package(out)
    assert json.loads(meta["ditrt.config"]) == cfg
    params = list(clip_arch.expected_shapes(cfg))
    assert sorted(got) == sorted(params + [clip_arch.TOKENIZER_KEY])
    for k in params:
        np.testing.assert_array_equal(got[k], tensors[k])
    merges = got[clip_arch.TOKENIZER_KEY]
    assert merges.dtype == np.uint8 and merges.tobytes().decode("utf-8") == merges_text(MERGES)


def test_keys_and_preset_count_match_transformers():
    transformers = pytest.importorskip("transformers")
    torch = pytest.importorskip("torch")
    from archs.clip_text.reference import CLIPTextReference

    cfg = clip_arch.PRESETS["CLIP-ViT-L/14-text"]
    with torch.device("meta"):
        model = CLIPTextReference.from_config(cfg)
    params = {k: tuple(v.shape) for k, v in model.named_parameters()}
    assert params == clip_arch.expected_shapes(cfg)
    assert list(params) == list(clip_arch.expected_shapes(cfg))  # module order
    assert sum(int(np.prod(s)) for s in params.values()) == 123_060_480, transformers.__version__


def test_infer_config_of_the_preset():
    shapes = clip_arch.expected_shapes(clip_arch.PRESETS["CLIP-ViT-L/14-text"])
    assert clip_arch.infer_config(shapes) == clip_arch.PRESETS["CLIP-ViT-L/14-text"]  # 64-wide heads
    assert clip_arch.infer_config(shapes, preset="CLIP-ViT-L/14-text") == clip_arch.PRESETS["CLIP-ViT-L/14-text"]


def test_convert_a_text_model_folder(tmp_path):
    folder, tensors = clip_folder(tmp_path)
    out = tmp_path / "out.safetensors"
    rc, stdout, err = run_convert("--arch", "clip_text", folder, out)
    assert rc == 0, err
    assert "set heads 2 (from num_attention_heads 2)" in err, err
    check_output(out, tensors, TINY)


def test_convert_a_whole_clip_model_with_gelu(tmp_path):
    cfg = dict(TINY, act="gelu", eps=1e-6, heads=4)
    folder, tensors = clip_folder(tmp_path, cfg, whole=True)
    out = tmp_path / "out.safetensors"
    rc, stdout, err = run_convert("--arch", "clip_text", folder, out)
    assert rc == 0, err
    assert "note: dropped 4 tensors of the vision model" in stdout, stdout
    check_output(out, tensors, cfg)


def test_tokenizer_from_a_folder_or_open_clips_gz(tmp_path):
    folder, tensors = clip_folder(tmp_path, tokenizer=False)
    tok = tmp_path / "tok"
    write_tokenizer_folder(MERGES, str(tok))
    gz = tmp_path / "bpe_simple_vocab_16e6.txt.gz"
    with gzip.open(gz, "wt", encoding="utf-8") as f:
        f.write("\"bpe_simple_vocab_16e6.txt#version: 0.2\n" + merges_text(MERGES + [("z", "z")] * 5))
    for i, source in enumerate([tok, gz]):
        out = tmp_path / f"out{i}.safetensors"
        rc, _, err = run_convert("--arch", "clip_text", "--tokenizer", source, folder, out)
        assert rc == 0, err
        check_output(out, tensors, TINY)


def test_convert_transformers_5s_unprefixed_keys(tmp_path):
    folder, tensors = clip_folder(tmp_path)
    write_safetensors(str(folder / "model.safetensors"), {k[len("text_model."):]: v for k, v in tensors.items()})
    out = tmp_path / "out.safetensors"
    rc, _, err = run_convert("--arch", "clip_text", folder, out)
    assert rc == 0, err
    check_output(out, tensors, TINY)


def test_convert_a_pytorch_model_bin(tmp_path):
    torch = pytest.importorskip("torch")
    folder, tensors = clip_folder(tmp_path)
    os.remove(folder / "model.safetensors")
    torch.save({k: torch.from_numpy(v) for k, v in tensors.items()}, folder / "pytorch_model.bin")
    out = tmp_path / "out.safetensors"
    rc, _, err = run_convert("--arch", "clip_text", folder, out)
    assert rc == 0, err
    check_output(out, tensors, TINY)


def test_refusals(tmp_path):
    out = tmp_path / "out.safetensors"
    folder, _ = clip_folder(tmp_path, tokenizer=False)
    expect_refused(["--arch", "clip_text", folder], out, "no tokenizer files", "--tokenizer")
    expect_refused(["--arch", "clip_text", "--tokenizer", tmp_path / "nowhere", folder], out, "nowhere")

    small = tmp_path / "small"
    small.mkdir()
    folder, _ = clip_folder(small, dict(TINY, vocab_size=100))
    expect_refused(["--arch", "clip_text", folder], out, "100 rows", "49408 ids")

    for name, config, needles in [
        ("disagree", hf_config(TINY, hidden_size=16), ["config.json says hidden_size 16", "the weights have 8"]),
        ("act", hf_config(TINY, hidden_act="relu"), ["hidden_act 'relu'", "quick_gelu"]),
        ("heads", hf_config(TINY, num_attention_heads=3), ["num_attention_heads gives 3 heads", "width 8"]),
    ]:
        d = tmp_path / name
        d.mkdir()
        folder, _ = clip_folder(d, config=config)
        expect_refused(["--arch", "clip_text", folder], out, *needles)

    d = tmp_path / "missing"
    d.mkdir()
    folder, _ = clip_folder(d, drop=("text_model.encoder.layers.1.mlp.fc2.bias",))
    expect_refused(["--arch", "clip_text", folder], out, "missing key 'text_model.encoder.layers.1.mlp.fc2.bias'")

    dit = tmp_path / "dit.safetensors"
    write_safetensors(str(dit), {"x_embedder.proj.weight": np.zeros((4, 4, 2, 2), np.float32)})
    expect_refused(["--arch", "clip_text", "--tokenizer", tmp_path / "tok", dit], out, "no text_model.* keys")
    expect_refused(["--arch", "dit", "--tokenizer", "x", dit], out, "--tokenizer does not apply to --arch dit")
