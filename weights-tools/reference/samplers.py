"""Reference samplers in float64, written from the official recipes (the test oracle for
src/sampling):

- DiT (facebookresearch/DiT, diffusion/): linear betas, respacing (respace.py space_timesteps with
  one section), ancestral DDPM (gaussian_diffusion.py p_sample_loop, clip_denoised=False as in
  sample.py) with learned-range or fixed-small variance, DDIM (ddim_sample), and guidance
  (models.py forward_with_cfg).
- U-ViT (baofff/U-ViT): Stable-Diffusion betas, DPM-Solver++ as eval_ldm_discrete.py runs it
  (dpm_solver_pp.py: NoiseScheduleVP('discrete'), predict_x0=True, method 'fast', order 3,
  skip_type 'time_uniform', t from 1 to 1/N, the model fed t*N) and its guidance; for the
  continuous-time models, DPM-Solver as eval_ldm.py runs it (dpm_solver_pytorch.py:
  NoiseScheduleVP('linear'), noise prediction, fast_version=True, t from 1 to 1e-4, the model fed
  t*999 by sde.ScoreModel).
- DiffiT (NVlabs/DiffiT, diffit.py forward_with_cfg): the power-cosine guidance ramp.

Models are callables model(x, t, y) -> (B, C_out, H, W) taking float64 tensors; noise comes from a
`noise()` callable so the fixtures can record what each step consumed.
"""

import math

import numpy as np
import torch

T = 1000  # training timesteps of every schedule here


# ----- schedules ---------------------------------------------------------------------------------

def linear_betas():
    """DiT / ADM get_named_beta_schedule('linear', 1000): linspace(1e-4, 0.02)."""
    return np.linspace(1e-4, 0.02, T, dtype=np.float64)


def stable_diffusion_betas():
    """U-ViT's stable_diffusion_beta_schedule: linspace(sqrt(0.00085), sqrt(0.012))^2."""
    return np.linspace(0.00085 ** 0.5, 0.012 ** 0.5, T, dtype=np.float64) ** 2


def space_timesteps(num_timesteps, count):
    """respace.py space_timesteps(num_timesteps, str(count)): one section, a float stride
    accumulated step by step and rounded half-to-even (Python's round)."""
    stride = (num_timesteps - 1) / (count - 1) if count > 1 else 1
    cur, steps = 0.0, []
    for _ in range(count):
        steps.append(round(cur))
        cur += stride
    return steps


class SpacedDiffusion:
    """GaussianDiffusion on the respaced betas (respace.py SpacedDiffusion); index i of the
    respaced chain runs the model at the original timestep timestep_map[i]."""

    def __init__(self, betas, steps):
        base_ac = np.cumprod(1.0 - betas)
        self.timestep_map = space_timesteps(len(betas), steps)
        last, new_betas = 1.0, []
        for t in self.timestep_map:
            new_betas.append(1.0 - base_ac[t] / last)
            last = base_ac[t]
        b = np.array(new_betas)
        self.betas = b
        self.ac = np.cumprod(1.0 - b)
        self.ac_prev = np.append(1.0, self.ac[:-1])
        self.posterior_variance = b * (1.0 - self.ac_prev) / (1.0 - self.ac)
        # log clipped: index 0 takes index 1's value (only used where no noise is added).
        pv = self.posterior_variance
        self.posterior_log_variance_clipped = np.log(np.append(pv[1], pv[1:])) if len(pv) > 1 else np.log(pv)
        self.coef1 = b * np.sqrt(self.ac_prev) / (1.0 - self.ac)
        self.coef2 = (1.0 - self.ac_prev) * np.sqrt(1.0 - b) / (1.0 - self.ac)

    def _split(self, out, c):
        return (out[:, :c], out[:, c:2 * c]) if out.shape[1] == 2 * c else (out, None)

    def _x0(self, i, x, eps):
        return math.sqrt(1.0 / self.ac[i]) * x - math.sqrt(1.0 / self.ac[i] - 1.0) * eps

    def p_sample_loop(self, model, x, noise):
        """Ancestral sampling; learned-range variance when the model has 2C outputs, else
        fixed-small (the posterior variance). No noise at the last step, no clipping."""
        c = x.shape[1]
        for i in reversed(range(len(self.betas))):
            eps, v = self._split(model(x, self.timestep_map[i]), c)
            x0 = self._x0(i, x, eps)
            mean = self.coef1[i] * x0 + self.coef2[i] * x
            if i == 0:
                x = mean
                break
            min_log = self.posterior_log_variance_clipped[i]
            if v is None:
                log_var = torch.full_like(x, min_log)
            else:
                frac = (v + 1) / 2
                log_var = frac * math.log(self.betas[i]) + (1 - frac) * min_log
            x = mean + torch.exp(0.5 * log_var) * noise()
        return x

    def ddim_sample_loop(self, model, x, eta, noise):
        """ddim_sample: eps re-derived from x0; sigma from eta; noise only where it is used
        (eta > 0, not the last step)."""
        c = x.shape[1]
        for i in reversed(range(len(self.betas))):
            eps, _ = self._split(model(x, self.timestep_map[i]), c)
            x0 = self._x0(i, x, eps)
            eps = (math.sqrt(1.0 / self.ac[i]) * x - x0) / math.sqrt(1.0 / self.ac[i] - 1.0)
            a, a_prev = self.ac[i], self.ac_prev[i]
            sigma = eta * math.sqrt((1 - a_prev) / (1 - a)) * math.sqrt(1 - a / a_prev)
            x = x0 * math.sqrt(a_prev) + math.sqrt(1 - a_prev - sigma ** 2) * eps
            if i > 0 and eta > 0:
                x = x + sigma * noise()
        return x


# ----- continuous-time VP schedules for DPM-Solver -----------------------------------------------

def _interp(x, xp, yp):
    """dpm_solver_pp.interpolate_fn for one point: piecewise linear through (xp, yp), xp
    increasing, the outer segments extended."""
    k = int(np.clip(np.searchsorted(xp, x) - 1, 0, len(xp) - 2))
    return yp[k] + (x - xp[k]) * (yp[k + 1] - yp[k]) / (xp[k + 1] - xp[k])


class DiscreteVP:
    """NoiseScheduleVP('discrete', betas): log alpha(t) interpolated between t_n = n/N and
    0.5 * cumsum(log(1 - beta)); the model is fed t * N (eval_ldm_discrete.py)."""

    def __init__(self, betas):
        self.n = len(betas)
        self.t = np.linspace(1.0 / self.n, 1.0, self.n)
        self.log_alpha_knots = 0.5 * np.cumsum(np.log(1.0 - betas))
        self.t_end = 1.0 / self.n

    def log_alpha(self, t):
        return _interp(t, self.t, self.log_alpha_knots)

    def inverse_lambda(self, lam):
        log_alpha = -0.5 * np.logaddexp(0.0, -2.0 * lam)
        return _interp(log_alpha, self.log_alpha_knots[::-1], self.t[::-1])

    def model_time(self, t):
        return t * self.n


class LinearVP:
    """NoiseScheduleVP('linear'): beta(t) = 0.1 + 19.9 t; U-ViT's continuous models get t * 999
    (sde.py ScoreModel.predict)."""

    beta_0, beta_1, t_end = 0.1, 20.0, 1e-4

    def log_alpha(self, t):
        return -0.25 * t ** 2 * (self.beta_1 - self.beta_0) - 0.5 * t * self.beta_0

    def inverse_lambda(self, lam):
        tmp = 2.0 * (self.beta_1 - self.beta_0) * np.logaddexp(-2.0 * lam, 0.0)
        delta = self.beta_0 ** 2 + tmp
        return tmp / (math.sqrt(delta) + self.beta_0) / (self.beta_1 - self.beta_0)

    def model_time(self, t):
        return t * 999.0


def _sigma(ns, t):
    return math.sqrt(1.0 - math.exp(2.0 * ns.log_alpha(t)))


def _lambda(ns, t):
    la = ns.log_alpha(t)
    return la - 0.5 * math.log(1.0 - math.exp(2.0 * la))


def fast_orders(steps):
    """get_time_steps_for_dpm_solver_fast with order 3: K = steps // 3 + 1 solver steps."""
    k = steps // 3 + 1
    if steps % 3 == 0:
        return [3] * (k - 2) + [2, 1]
    if steps % 3 == 1:
        return [3] * (k - 1) + [1]
    return [3] * (k - 1) + [2]


def dpm_solver_pp_fast(model, ns, x, steps):
    """dpm_solver_pp.DPM_Solver(predict_x0=True).sample(method='fast', order=3,
    skip_type='time_uniform', solver_type='dpm_solver', t from 1 to ns.t_end): the time grid has
    steps + 1 uniform points and a step of order k spans k of its intervals, its intermediate
    points found through inverse_lambda at the grid's logSNR ratios r1, r2."""
    ts = np.linspace(1.0, ns.t_end, steps + 1)

    def x0_pred(x, t):
        eps = model(x, ns.model_time(t))[:, :x.shape[1]]
        return (x - _sigma(ns, t) * eps) / math.exp(ns.log_alpha(t))

    i = 0
    for order in fast_orders(steps):
        s, t = ts[i], ts[i + order]
        lam_s = _lambda(ns, s)
        h = _lambda(ns, t) - lam_s
        sig_s, sig_t, alpha_t = _sigma(ns, s), _sigma(ns, t), math.exp(ns.log_alpha(t))
        phi_1 = math.expm1(-h)
        x0_s = x0_pred(x, s)
        if order == 1:
            x = (sig_t / sig_s) * x - alpha_t * phi_1 * x0_s
        elif order == 2:
            r1 = (_lambda(ns, ts[i + 1]) - lam_s) / h
            s1 = ns.inverse_lambda(lam_s + r1 * h)
            x_s1 = (_sigma(ns, s1) / sig_s) * x - math.exp(ns.log_alpha(s1)) * math.expm1(-r1 * h) * x0_s
            x0_s1 = x0_pred(x_s1, s1)
            x = ((sig_t / sig_s) * x - alpha_t * phi_1 * x0_s
                 - (0.5 / r1) * alpha_t * phi_1 * (x0_s1 - x0_s))
        else:
            r1 = (_lambda(ns, ts[i + 1]) - lam_s) / h
            r2 = (_lambda(ns, ts[i + 2]) - lam_s) / h
            s1, s2 = ns.inverse_lambda(lam_s + r1 * h), ns.inverse_lambda(lam_s + r2 * h)
            a1, a2 = math.exp(ns.log_alpha(s1)), math.exp(ns.log_alpha(s2))
            phi_22 = math.expm1(-r2 * h) / (r2 * h) + 1.0
            phi_2 = phi_1 / h + 1.0
            x_s1 = (_sigma(ns, s1) / sig_s) * x - a1 * math.expm1(-r1 * h) * x0_s
            x0_s1 = x0_pred(x_s1, s1)
            x_s2 = ((_sigma(ns, s2) / sig_s) * x - a2 * math.expm1(-r2 * h) * x0_s
                    + (r2 / r1) * a2 * phi_22 * (x0_s1 - x0_s))
            x0_s2 = x0_pred(x_s2, s2)
            x = ((sig_t / sig_s) * x - alpha_t * phi_1 * x0_s
                 + (1.0 / r2) * alpha_t * phi_2 * (x0_s2 - x0_s))
        i += order
    return x


def dpm_solver_fast(model, ns, x, steps):
    """dpm_solver_pytorch.DPM_Solver(model_fn, ns).sample(fast_version=True): noise prediction,
    K = steps // 3 + 1 steps on a grid uniform in lambda from t = 1 to ns.t_end, the orders of
    fast_orders, intermediate points at lambda_s + r h with r = 1/2 (order 2) or 1/3, 2/3."""
    lams = np.linspace(_lambda(ns, 1.0), _lambda(ns, ns.t_end), steps // 3 + 2)
    ts = [ns.inverse_lambda(lam) for lam in lams]

    def eps(x, t):
        return model(x, ns.model_time(t))[:, :x.shape[1]]

    def shift(x, s, t):  # exp(log_alpha_t - log_alpha_s)
        return math.exp(ns.log_alpha(t) - ns.log_alpha(s)) * x

    for i, order in enumerate(fast_orders(steps)):
        s, t = ts[i], ts[i + 1]
        lam_s = _lambda(ns, s)
        h = _lambda(ns, t) - lam_s
        sig_t, phi_1 = _sigma(ns, t), math.expm1(h)
        e_s = eps(x, s)
        if order == 1:
            x = shift(x, s, t) - sig_t * phi_1 * e_s
        elif order == 2:
            r1 = 0.5
            s1 = ns.inverse_lambda(lam_s + r1 * h)
            e_s1 = eps(shift(x, s, s1) - _sigma(ns, s1) * math.expm1(r1 * h) * e_s, s1)
            x = shift(x, s, t) - sig_t * phi_1 * e_s - (0.5 / r1) * sig_t * phi_1 * (e_s1 - e_s)
        else:
            r1, r2 = 1.0 / 3.0, 2.0 / 3.0
            s1, s2 = ns.inverse_lambda(lam_s + r1 * h), ns.inverse_lambda(lam_s + r2 * h)
            phi_22 = math.expm1(r2 * h) / (r2 * h) - 1.0
            phi_2 = math.expm1(h) / h - 1.0
            e_s1 = eps(shift(x, s, s1) - _sigma(ns, s1) * math.expm1(r1 * h) * e_s, s1)
            x_s2 = (shift(x, s, s2) - _sigma(ns, s2) * math.expm1(r2 * h) * e_s
                    - (r2 / r1) * _sigma(ns, s2) * phi_22 * (e_s1 - e_s))
            e_s2 = eps(x_s2, s2)
            x = shift(x, s, t) - sig_t * phi_1 * e_s - (1.0 / r2) * sig_t * phi_2 * (e_s2 - e_s)
    return x


# ----- guidance ----------------------------------------------------------------------------------

def guided(model, labels, null_class, kind=None, scale=1.0, channels=3, power=4.0):
    """model(x, t_model) for a sampler: both halves in one batch [cond; uncond] with the null class.

    kind None: the conditional prediction alone.
    'dit':    eps = u + s (c - u) on the first `channels` channels (forward_with_cfg uses 3), the
              other channels (the 4th latent channel, the variance) from the conditional half.
    'uvit':   eps = c + s (c - u) (eval_ldm_discrete.py cfg_nnet), on `channels` channels.
    'diffit': 'dit' with s_t = (s - 1) * 0.5 * (1 - cos(pi (1 - t/1000)^power)) + 1.
    """
    def fn(x, t):
        b = x.shape[0]
        if kind is None:
            return model(x, torch.full((b,), t, dtype=torch.float64), labels)
        y = torch.cat([labels, torch.full_like(labels, null_class)])
        out = model(torch.cat([x, x]), torch.full((2 * b,), t, dtype=torch.float64), y)
        cond, uncond = out[:b], out[b:]
        c, u = cond[:, :channels], uncond[:, :channels]
        if kind == "uvit":
            g = c + scale * (c - u)
        else:
            s = scale
            if kind == "diffit":
                s = (scale - 1) * 0.5 * (1 - math.cos(math.pi * (1 - t / T) ** power)) + 1
            g = u + s * (c - u)
        return torch.cat([g, cond[:, channels:]], dim=1)
    return fn
