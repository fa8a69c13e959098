"""U-ViT text-to-image fixtures (tests/fixtures/uvit_t2i_<...>): 77 text tokens each, with and
without the output conv and the time MLP, and one at U-ViT-S's head dim (64) with CLIP ViT-L/14's
context width (768); every parameter random (LayerNorms too) so each path shows in the output."""

import numpy as np

from archs.uvit.fixtures import BATCH, init_std, path_parts  # noqa: F401  (spec interface: as U-ViT's)
from archs.uvit_t2i.checkpoint import expected_shapes, make_config  # noqa: F401  (expected_shapes: spec interface)
from archs.uvit_t2i.reference import UViTT2I
from reference.fixtures import load_weights

CONFIGS = {  # name: (seed, config)
    # latent-like: 4 channels, output conv, 2 skips, a narrow context
    "uvit_t2i_conv": (51, make_config(img_size=8, patch_size=2, in_chans=4, embed_dim=32, depth=4, num_heads=2,
                                      clip_dim=16, num_clip_token=77, conv=True)),
    # odd depth 3 (1 in-block, mid, 1 out), time MLP, no conv, mlp_ratio 2, patch 4
    "uvit_t2i_mlptime_noconv": (52, make_config(img_size=8, patch_size=4, in_chans=3, embed_dim=32, depth=3,
                                                num_heads=4, mlp_ratio=2.0, mlp_time_embed=True, clip_dim=24,
                                                num_clip_token=77, conv=False)),
    # the released models' head dim (512 / 8 = 64) and CLIP ViT-L/14's 77 x 768 context, at 2 heads
    # and depth 2 so the file stays ~3 MB (the full width, 512 x 8 heads, is 41 MB at depth 2; it
    # runs against the CPU in tests/integration/real_widths.rs)
    "uvit_t2i_hd64": (53, make_config(img_size=8, patch_size=2, in_chans=4, embed_dim=128, depth=2, num_heads=2,
                                      clip_dim=768, num_clip_token=77, conv=True)),
}
# Over the 512 KiB cap of tests/test_fixtures.py, with the reason above.
LARGE = {"uvit_t2i_hd64"}


def random_inputs(cfg, rng):
    s = cfg["img_size"]
    return {"x": rng.standard_normal((BATCH, cfg["in_chans"], s, s)).astype(np.float32),
            "t": rng.uniform(0.0, 999.0, BATCH).astype(np.float32),
            "context": rng.standard_normal((BATCH, cfg["num_clip_token"], cfg["clip_dim"])).astype(np.float32)}


def reference_model(cfg, weights):
    return load_weights(UViTT2I.from_config(cfg).double().eval(), weights)
