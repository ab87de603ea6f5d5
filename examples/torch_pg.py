"""A small PyTorch implementation of GAE, a REINFORCE loss and a TRPO step, verified by refpg.

This is what a user's own code looks like (time-major rollout buffers, autograd losses,
double-backprop Fisher-vector products) and how it is checked against refpg:

    pip install -e ".[torch]"          # torch==2.13.0, CPU
    python examples/torch_pg.py       # prints three refpg reports; exit 0 iff all pass

Each function takes NumPy arrays (what refpg's verifiers pass) and converts them to
tensors at the boundary, as a wrapper around real training code would.
derivations/verify.md#the-command-line; the same checks from the shell:

    refpg verify gae examples/torch_pg.py:gae --layout time_major
    refpg verify estimator examples/torch_pg.py:reinforce_gradient --sign loss
    refpg verify trpo_step examples/torch_pg.py:trpo_step
"""
from __future__ import annotations

import sys

import numpy as np
import torch

torch.set_num_threads(1)   # tiny tensors: intra-op threads cost more than they save
DTYPE = torch.float64      # refpg's verifiers compare at float64 precision by default


# ----------------------------------------------------------------------------- GAE
def gae(rewards, values, next_values, terminated, truncated, gamma, lam):
    """GAE(gamma, lam) on a time-major (T, N) rollout buffer.

    ``next_values[t] = V(s_{t+1})`` of the state actually reached (before any reset);
    ``terminated`` cuts the bootstrap, ``terminated | truncated`` cuts the recursion
    (refpg's convention C; CleanRL instead treats truncation as termination).
    """
    r, v, nv = (torch.as_tensor(a, dtype=DTYPE) for a in (rewards, values, next_values))
    term = torch.as_tensor(terminated, dtype=torch.bool)
    done = term | torch.as_tensor(truncated, dtype=torch.bool)
    delta = r + gamma * (~term).to(DTYPE) * nv - v
    adv = torch.zeros_like(r)
    last = torch.zeros(r.shape[1], dtype=DTYPE)
    for t in reversed(range(r.shape[0])):
        last = delta[t] + gamma * lam * (~done[t]).to(DTYPE) * last
        adv[t] = last
    return adv


# ------------------------------------------------------------------- REINFORCE loss
def reinforce_gradient(logits, states, actions, rewards, mask, gamma):
    """Gradient of the REINFORCE pseudo-loss w.r.t. tabular logits (batch-major (N, T)).

    loss = -(1/N) sum_i sum_t gamma^t G_t log pi(a_t | s_t) with the discounted
    reward-to-go G_t; ``loss.backward()`` leaves the estimator (with a minus sign) in
    ``logits.grad``: verify with ``sign="loss"``.
    """
    z = torch.tensor(np.asarray(logits), dtype=DTYPE, requires_grad=True)
    r = torch.as_tensor(rewards, dtype=DTYPE)
    m = torch.as_tensor(mask, dtype=DTYPE)
    N, T = r.shape
    G = torch.zeros_like(r)
    acc = torch.zeros(N, dtype=DTYPE)
    for t in reversed(range(T)):                      # padding rewards are 0
        acc = r[:, t] + gamma * acc
        G[:, t] = acc
    w = gamma ** torch.arange(T, dtype=DTYPE)
    logp = torch.log_softmax(z, dim=-1)[torch.as_tensor(states), torch.as_tensor(actions)]
    loss = -(m * w * G * logp).sum() / N
    loss.backward()
    return z.grad


# --------------------------------------------------------------------------- TRPO
def _conjugate_gradient(fvp, g, max_iter, rtol=1e-10):
    x = torch.zeros_like(g)
    r = g.clone()
    p = r.clone()
    rr = r @ r
    g_norm = torch.sqrt(rr)
    max_rayleigh = 0.0
    for _ in range(max_iter):
        if torch.sqrt(rr) <= rtol * g_norm:
            break
        Fp = fvp(p)
        curv, pp = p @ Fp, p @ p
        max_rayleigh = max(max_rayleigh, float(curv / pp))
        # the tabular softmax Fisher is singular: stop when the search direction has no
        # curvature left (Rayleigh quotient at rounding level) instead of dividing by noise
        if curv <= 64 * torch.finfo(DTYPE).eps * max_rayleigh * pp:
            break
        alpha = rr / curv
        x = x + alpha * p
        r = r - alpha * Fp
        rr_new = r @ r
        p = r + (rr_new / rr) * p
        rr = rr_new
    return x


def trpo_step(logits, states, actions, advantages, old_log_probs, max_kl):
    """One TRPO step on tabular softmax logits (refpg's conventions: KL(old || new),
    no damping, CG from 0, step length sqrt(2 delta / x^T F x), halving line search that
    accepts when KL_mean <= delta and the surrogate improves; revert otherwise).
    Returns ``(new_logits, info)``."""
    z_old = torch.as_tensor(np.asarray(logits), dtype=DTYPE)
    s = torch.as_tensor(states)
    a = torch.as_tensor(actions)
    adv = torch.as_tensor(advantages, dtype=DTYPE)
    old = torch.as_tensor(old_log_probs, dtype=DTYPE)
    p_old = torch.softmax(z_old, -1)[s]
    logp_old_all = torch.log_softmax(z_old, -1)[s]

    def surrogate(z):
        return (torch.exp(torch.log_softmax(z, -1)[s, a] - old) * adv).mean()

    def mean_kl(z):          # KL(pi_old || pi_z), averaged over the M sampled states
        return (p_old * (logp_old_all - torch.log_softmax(z, -1)[s])).sum(-1).mean()

    z = z_old.clone().requires_grad_(True)
    g = torch.autograd.grad(surrogate(z), z)[0].reshape(-1)
    grad_kl = torch.autograd.grad(mean_kl(z), z, create_graph=True)[0].reshape(-1)

    def fvp(v):              # Hessian of the mean KL at z_old times v (double backprop)
        return torch.autograd.grad(grad_kl @ v, z, retain_graph=True)[0].reshape(-1)

    x = _conjugate_gradient(fvp, g, max_iter=10 * g.numel())
    xFx = x @ fvp(x)
    info = {"accepted": False, "n_backtracks": 0, "step_fraction": 0.0, "step_length": 0.0}
    if not xFx > 0:
        return z_old.numpy().copy(), info
    beta = torch.sqrt(2 * max_kl / xFx)
    info["step_length"] = float(beta)
    full = (beta * x).reshape(z_old.shape)
    with torch.no_grad():
        L_old = surrogate(z_old)
        for k in range(10):
            frac = 0.5 ** k
            z_new = z_old + frac * full
            kl, improvement = mean_kl(z_new), surrogate(z_new) - L_old
            if kl <= max_kl and improvement > 0:          # NaN fails both comparisons
                info.update(accepted=True, n_backtracks=k, step_fraction=frac)
                return z_new.numpy().copy(), info
    return z_old.numpy().copy(), info


def main():
    from refpg.verify.estimators import verify_estimator
    from refpg.verify.returns import verify_gae
    from refpg.verify.trpo_step import verify_trpo_step

    reports = [verify_gae(gae, layout="time_major"),
               verify_estimator(reinforce_gradient, estimator="reward_to_go",
                                weighting="discounted", sign="loss"),
               verify_trpo_step(trpo_step)]
    for rep in reports:
        print(rep, end="\n\n")
    return 0 if all(r.passed for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
