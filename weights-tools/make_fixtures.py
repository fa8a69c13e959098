#!/usr/bin/env python3
"""Write the model fixtures in tests/fixtures (run: python3 weights-tools/make_fixtures.py).

Every arch (archs.ALL) lists its small configs in archs/<arch>/fixtures.py; for each:
  <name>.safetensors          weights, official keys, f32, metadata {"ditrt.config": JSON}
  <name>.fixture.safetensors  the inputs the model takes: x (f32, B x C x H x W), t (f32, B, real
                              in [0, 999]), y (i64, B, the last = num_classes = null class),
                              context (f32, B x 77 x context width, text-conditioned models), or
                              a text encoder's input_ids (i64, B x 77); and out (f32)
Every parameter is re-randomised (DiT zero-inits adaLN and the output layer, which would hide
those paths) with scales that keep activations O(1). `out` is computed in float64 from the
f32-rounded weights and inputs, then rounded to f32. Fixed seeds: reruns give the same files.
The recipe, and the path check every fixture must pass, is reference/fixtures.py.
"""

import argparse
import os

from archs import ALL
from reference.fixtures import FIXTURES, load_spec, write_all


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=FIXTURES, help="where to write them (default: tests/fixtures)")
    ap.add_argument("--arch", choices=ALL, action="append", help="only these archs (default: all)")
    args = ap.parse_args(argv)
    os.makedirs(args.out_dir, exist_ok=True)
    for arch in args.arch or ALL:
        write_all(load_spec(arch), args.out_dir)


if __name__ == "__main__":
    main()
