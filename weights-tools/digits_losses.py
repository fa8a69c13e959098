"""Training losses of the bundled digit models (used by train_digits.py).

- `hybrid_loss` for learned-sigma models (DiT, DiffiT, in-context LDM), as facebookresearch/DiT
  trains (diffusion/gaussian_diffusion.py, MSE loss type, LEARNED_RANGE variance):
      L = mean((eps - eps_hat)^2) + L_vb,  L_vb = KL(q(x_{t-1}|x_t,x_0) || p(x_{t-1}|x_t))
  in bits per dim (the discretised-Gaussian decoder NLL at t = 0), with the predicted mean
  detached so that L_vb trains only the variance; log sigma^2 = frac * log beta_t +
  (1 - frac) * log beta~_t (clipped), frac = (v + 1) / 2. This is improved-DDPM's
  L_simple + lambda * L_vlb with lambda = 0.001 and L_vlb = T * E_t[L_t].
- `eps_loss` for eps-only models (U-ViT): mean((eps - eps_hat)^2), U-ViT's discrete-time
  training objective (its LDM models on Stable Diffusion's betas).
"""

import math

import numpy as np
import torch


class Diffusion:
    """Forward-process coefficients (float64 numpy) of the training schedule `betas`."""

    def __init__(self, betas):
        b = np.asarray(betas, dtype=np.float64)
        self.num_timesteps = len(b)
        ac = np.cumprod(1.0 - b)
        ac_prev = np.append(1.0, ac[:-1])
        self.sqrt_ac = np.sqrt(ac)
        self.sqrt_1m_ac = np.sqrt(1.0 - ac)
        self.sqrt_recip_ac = np.sqrt(1.0 / ac)
        self.sqrt_recipm1_ac = np.sqrt(1.0 / ac - 1.0)
        post_var = b * (1.0 - ac_prev) / (1.0 - ac)
        self.post_logvar_clipped = np.log(np.append(post_var[1], post_var[1:]))
        self.log_betas = np.log(b)
        self.post_c1 = b * np.sqrt(ac_prev) / (1.0 - ac)
        self.post_c2 = (1.0 - ac_prev) * np.sqrt(1.0 - b) / (1.0 - ac)

    def get(self, arr, t, x):
        return torch.as_tensor(arr, dtype=x.dtype)[t].view(-1, *([1] * (x.dim() - 1)))

    def q_sample(self, x0, t, noise):
        return self.get(self.sqrt_ac, t, x0) * x0 + self.get(self.sqrt_1m_ac, t, x0) * noise

    def posterior_mean(self, x0, xt, t):
        return self.get(self.post_c1, t, xt) * x0 + self.get(self.post_c2, t, xt) * xt

    def p_mean_logvar(self, xt, t, eps, v):
        """Learned-range p(x_{t-1} | x_t): (mean, log variance), no clipping."""
        frac = (v + 1) / 2
        logvar = frac * self.get(self.log_betas, t, xt) + (1 - frac) * self.get(self.post_logvar_clipped, t, xt)
        x0 = self.get(self.sqrt_recip_ac, t, xt) * xt - self.get(self.sqrt_recipm1_ac, t, xt) * eps
        return self.posterior_mean(x0, xt, t), logvar


def normal_kl(mean1, logvar1, mean2, logvar2):
    return 0.5 * (-1.0 + logvar2 - logvar1 + torch.exp(logvar1 - logvar2)
                  + (mean1 - mean2) ** 2 * torch.exp(-logvar2))


def _approx_std_normal_cdf(x):
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def discretized_gaussian_loglik(x, mean, log_scale):
    """log-likelihood of x in [-1, 1] quantised to 256 bins under N(mean, exp(log_scale)^2)."""
    c = x - mean
    inv = torch.exp(-log_scale)
    cdf_plus = _approx_std_normal_cdf(inv * (c + 1.0 / 255.0))
    cdf_min = _approx_std_normal_cdf(inv * (c - 1.0 / 255.0))
    log_cdf_plus = torch.log(cdf_plus.clamp(min=1e-12))
    log_1m_cdf_min = torch.log((1.0 - cdf_min).clamp(min=1e-12))
    log_delta = torch.log((cdf_plus - cdf_min).clamp(min=1e-12))
    return torch.where(x < -0.999, log_cdf_plus, torch.where(x > 0.999, log_1m_cdf_min, log_delta))


def _noised(diff, x0):
    t = torch.randint(0, diff.num_timesteps, (x0.shape[0],))
    noise = torch.randn_like(x0)
    return t, noise, diff.q_sample(x0, t, noise)


def hybrid_loss(model, diff, x0, y):
    """-> (loss, mse, vb) batch means, for a model with 2C output channels (eps, v)."""
    c = x0.shape[1]
    t, noise, xt = _noised(diff, x0)
    out = model(xt, t.to(x0.dtype), y)
    eps, v = out[:, :c], out[:, c:]
    mean, logvar = diff.p_mean_logvar(xt, t, eps.detach(), v)  # mean frozen: vb trains v only
    true_mean = diff.posterior_mean(x0, xt, t)
    true_logvar = diff.get(diff.post_logvar_clipped, t, x0)
    kl = normal_kl(true_mean, true_logvar, mean, logvar).mean(dim=(1, 2, 3)) / math.log(2.0)
    nll = -discretized_gaussian_loglik(x0, mean, 0.5 * logvar).mean(dim=(1, 2, 3)) / math.log(2.0)
    vb = torch.where(t == 0, nll, kl)
    mse = ((noise - eps) ** 2).mean(dim=(1, 2, 3))
    return (mse + vb).mean(), mse.mean(), vb.mean()


def eps_loss(model, diff, x0, y):
    """-> (loss, mse, 0) for an eps-only model."""
    t, noise, xt = _noised(diff, x0)
    mse = ((noise - model(xt, t.to(x0.dtype), y)) ** 2).mean()
    return mse, mse, torch.zeros(())
