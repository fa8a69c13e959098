#!/usr/bin/env python3
"""Write the sampler trajectory fixtures in tests/fixtures
(run: python3 weights-tools/make_sampler_fixtures.py [--out-dir DIR]; needs the DiT fixture
models from make_fixtures.py in that folder).

Each case runs a small DiT fixture model (archs/dit/reference.py in float64 on the f32 weights)
through one sampler of reference/samplers.py and writes sampler_<case>.safetensors:
  labels  (i64, b)                    class labels of the b images
  noise   (f32, S x b x C x H x W)    every standard-normal draw in order: x_T first, then each
                                      step's noise (the sampler uses the f32 values exactly)
  x_in    (f32, E x b x C x H x W)    the state fed to the model at each of the E evaluations
  t_in    (f32, E)                    the model's time input at each evaluation
  out     (f32, b x C x H x W)        the final sample
metadata "ditrt.sampler" (JSON): the model fixture and the sampler settings.
The model's t input is rounded to f32 as ditrt's (and the official code's) f32 input tensor is.
Fixed seeds: reruns give the same files.
"""

import argparse
import json
import os

import numpy as np
import torch

import reference.samplers as S
from archs.dit.reference import DiT
from ckpt_io import read_safetensors, write_safetensors
from reference.fixtures import FIXTURES

# name: (model fixture, sampler settings, labels); "guidance" is (kind, scale, channels) or None.
CASES = {
    "ddpm_dit_cfg": ("dit_p2", dict(method="ddpm", schedule="linear", steps=8,
                                    guidance=("dit", 4.0, 3)), [3, 7]),
    "ddim_eta0_cfg_all": ("dit_p2", dict(method="ddim", eta=0.0, schedule="linear", steps=8,
                                         guidance=("dit", 1.5, 4)), [1, 9]),
    "ddim_eta1": ("dit_p2", dict(method="ddim", eta=1.0, schedule="linear", steps=8,
                                 guidance=None), [2, 10]),
    "ddpm_diffit_ramp": ("dit_p2", dict(method="ddpm", schedule="linear", steps=10,
                                        guidance=("diffit", 4.4, 3)), [8, 2]),
    "ddpm_fixed_small": ("dit_p4_hd72", dict(method="ddpm", schedule="linear", steps=6,
                                             guidance=("dit", 2.0, 3)), [0, 4]),
    "dpm_uvit_cfg": ("dit_p2", dict(method="dpm_solver_pp", schedule="stable_diffusion", steps=50,
                                    guidance=("uvit", 0.7, 4)), [5, 0]),
    "dpm_vp_linear": ("dit_p2", dict(method="dpm_solver_pp", schedule="vp_linear", steps=12,
                                     guidance=None), [4, 6]),
    "dpm_eps_uvit_continuous_cfg": ("dit_p2", dict(method="dpm_solver", schedule="vp_linear", steps=50,
                                                   guidance=("uvit", 0.4, 4)), [7, 1]),
    "dpm_eps_discrete": ("dit_p2", dict(method="dpm_solver", schedule="stable_diffusion", steps=10,
                                        guidance=None), [9, 10]),
}


def load_model(fixtures_dir, name):
    weights, meta = read_safetensors(os.path.join(fixtures_dir, f"{name}.safetensors"))
    cfg = json.loads(meta["ditrt.config"])
    model = DiT.from_config(cfg).double().eval()
    model.load_state_dict({k: torch.from_numpy(np.array(v)).double() for k, v in weights.items()}, strict=True)

    def run(x, t, y):
        with torch.no_grad():
            return model(x, t.float().double(), y)  # t as the f32 input tensor holds it
    return run, cfg


def run_case(settings, model, cfg, labels, rng):
    b, c, s = len(labels), cfg["in_channels"], cfg["input_size"]
    draws = []

    def noise():
        z = rng.standard_normal((b, c, s, s)).astype(np.float32)
        draws.append(z)
        return torch.from_numpy(z).double()

    xs, ts = [], []
    kind, scale, channels = settings["guidance"] or (None, 1.0, c)
    guided = S.guided(model, torch.tensor(labels), cfg["num_classes"], kind, scale, channels)

    def recorded(x, t):
        xs.append(x.numpy().astype(np.float32))
        ts.append(np.float32(t))
        return guided(x, float(np.float32(t)))

    x = noise()
    method, schedule = settings["method"], settings["schedule"]
    betas = S.stable_diffusion_betas() if schedule == "stable_diffusion" else S.linear_betas()
    if method.startswith("dpm_solver"):
        ns = S.LinearVP() if schedule == "vp_linear" else S.DiscreteVP(betas)
        solver = S.dpm_solver_pp_fast if method == "dpm_solver_pp" else S.dpm_solver_fast
        out = solver(recorded, ns, x, settings["steps"])
    else:
        diffusion = S.SpacedDiffusion(betas, settings["steps"])
        if method == "ddpm":
            out = diffusion.p_sample_loop(recorded, x, noise)
        else:
            out = diffusion.ddim_sample_loop(recorded, x, settings["eta"], noise)
    return {"labels": np.array(labels, dtype=np.int64), "noise": np.stack(draws),
            "x_in": np.stack(xs), "t_in": np.array(ts, dtype=np.float32),
            "out": out.numpy().astype(np.float32)}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out-dir", default=FIXTURES,
                    help="the fixtures folder: DiT models read, sampler fixtures written (default: tests/fixtures)")
    args = ap.parse_args(argv)
    for seed, (case, (model_name, settings, labels)) in enumerate(CASES.items()):
        model, cfg = load_model(args.out_dir, model_name)
        tensors = run_case(settings, model, cfg, labels, np.random.default_rng(100 + seed))
        meta = {"ditrt.sampler": json.dumps({"model": model_name, **settings})}
        path = os.path.join(args.out_dir, f"sampler_{case}.safetensors")
        write_safetensors(path, tensors, meta)
        out = tensors["out"]
        print(f"{case}: {len(tensors['t_in'])} evaluations, {len(tensors['noise'])} noise draws, "
              f"rms(out) {np.sqrt((out ** 2).mean()):.3f}, {os.path.getsize(path)} bytes")


if __name__ == "__main__":
    main()
