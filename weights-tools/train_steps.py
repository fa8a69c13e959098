"""The optimisation both digits trainers share (train_digits.py, train_t2i_digits.py): AdamW with
a linear warm-up over the first 5% of steps then a cosine decay to 5% of the rate, gradient
clipping at 1, and an EMA of the weights whose decay ramps up as min(0.999, (1+s)/(10+s))."""

import math

import torch


def optimizer(model, lr, steps):
    """(AdamW, its scheduler) for `steps` steps at peak rate `lr`."""
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.0)
    warmup = max(1, steps // 20)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warmup, 0.5 * (1 + math.cos(math.pi * min(s, steps) / steps)) * 0.95 + 0.05))
    return opt, sched


def step(model, ema, opt, sched, loss, step_index):
    """One update from `loss`: backward, clip, optimiser and schedule step, EMA update."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    sched.step()
    decay = min(0.999, (1 + step_index) / (10 + step_index))
    with torch.no_grad():
        for pe, p in zip(ema.parameters(), model.parameters()):
            pe.mul_(decay).add_(p.detach(), alpha=1 - decay)
