"""Report section 'returns': GAE identities, the scan, the sampler's law. See refpg.report.

Rows (each two independent routes on built-in data with fixed seeds):

* GAE(lam=1) against the bootstrapped reward-to-go minus the values;
* GAE(lam=0) against the TD residuals (bit-identical);
* the lambda-returns' own recursion against GAE + values;
* the log-depth scan against the plain backward loop (its rounding error);
* the alias tables against the joint table pi(a|s) P(s'|s,a), by enumerating columns;
* the sampler's one-step joint frequencies against that table, as standardised
  residuals, with the chi-square statistic and p-value in the note.

derivations/returns.md, derivations/sampling.md
"""
from __future__ import annotations

import numpy as np

from ..mdp import random_mdp
from ..returns import gae, lambda_returns, reward_to_go, td_residuals
from ..sampling import alias_table, joint_table, sample_from_table
from . import compare

__all__ = ["checks"]

_SECTION = "returns"


def _buffer(seed, N, T, p_term=0.01, p_trunc=0.005):
    rng = np.random.default_rng(seed)
    u = rng.random((N, T))
    term = u < p_term
    trunc = (u >= p_term) & (u < p_term + p_trunc)
    r = rng.standard_normal((N, T))
    v = rng.standard_normal((N, T))
    nv = np.empty((N, T))
    nv[:, :-1] = v[:, 1:]
    done = term | trunc
    nv[done] = rng.standard_normal(int(done.sum()))
    nv[:, -1] = rng.standard_normal(N)
    return r, v, nv, term, trunc


def _plain_gae(r, v, nv, term, trunc, gamma, lam):
    N, T = r.shape
    done = term | trunc
    out = np.zeros((N, T))
    acc = np.zeros(N)
    for t in range(T - 1, -1, -1):
        delta = r[:, t] + gamma * (~term[:, t]) * nv[:, t] - v[:, t]
        acc = delta + gamma * lam * (~done[:, t]) * acc
        out[:, t] = acc
    return out


def checks():
    """Rows of this section: list of refpg.report.Check. derivations/returns.md"""
    rows = []
    gamma, lam = 0.99, 0.95
    r, v, nv, term, trunc = _buffer(0, 16, 2048)
    flags = dict(terminated=term, truncated=trunc)

    A1 = gae(r, v, nv, gamma, 1.0, **flags).advantages
    G = reward_to_go(r, gamma, next_values=nv, **flags)
    rows.append(compare(_SECTION, "GAE(lam=1), (T, N) = (2048, 16)", "gae recursion",
                        "reward_to_go - values", A1, G - v, 1e-13, relative=True,
                        note="bootstrapped at truncation and at the buffer end (R2), (R5)"))
    A0 = gae(r, v, nv, gamma, 0.0, **flags).advantages
    rows.append(compare(_SECTION, "GAE(lam=0)", "gae recursion", "td_residuals (R3)", A0,
                        td_residuals(r, v, nv, gamma, terminated=term), 0.0))
    res = gae(r, v, nv, gamma, lam, **flags)
    rows.append(compare(_SECTION, f"lambda-return, lam={lam}", "lambda_returns (R4)",
                        "gae advantages + values", lambda_returns(r, nv, gamma, lam, **flags),
                        res.returns, 1e-13, relative=True))
    plain = _plain_gae(r, v, nv, term, trunc, gamma, lam)
    for method in ("scan", "loop"):
        A = gae(r, v, nv, gamma, lam, method=method, **flags).advantages
        rows.append(compare(_SECTION, f"GAE({gamma}, {lam}) by {method}",
                            f"refpg [{method}]", "plain backward recursion", A, plain, 1e-13,
                            relative=True, note="relative to max |A|; the scan sums in a "
                            "balanced tree (O(log2 T) eps)" if method == "scan" else ""))

    # the sampler: alias tables and the one-step joint law
    rng = np.random.default_rng(1)
    mdp = random_mdp(rng, 5, 3, sparsity=0.4, n_terminal=1, horizon=5)
    pi = rng.dirichlet(np.ones(3), size=5)
    J = joint_table(mdp, pi)
    table = alias_table(J)
    rows.append(compare(_SECTION, "alias tables of pi(a|s) P(s'|s,a)",
                        "enumerate the K columns (S3)", "joint table (S2)",
                        table.distribution(), J, table.n_columns * 2.0 ** -52,
                        note=f"K = {table.n_columns} columns per state"))
    from scipy.stats import chi2, norm

    s0, n = 0, 200_000
    b = sample_from_table(mdp, pi, n, np.random.default_rng(2), horizon=1,
                          start_states=np.full(n, s0))
    S, A = mdp.n_states, mdp.n_actions
    counts = np.bincount(b.actions[:, 0] * S + b.next_states[:, 0], minlength=A * S)
    p = J[s0]
    pos = p > 0
    z = np.zeros(A * S)
    z[pos] = (counts[pos] - n * p[pos]) / np.sqrt(n * p[pos] * (1 - p[pos]))
    z[~pos] = np.where(counts[~pos] > 0, np.inf, 0.0)
    stat = float(np.sum((counts[pos] - n * p[pos]) ** 2 / (n * p[pos])))
    df = int(pos.sum()) - 1
    z_crit = float(norm.isf(1e-6 / (2 * pos.sum())))   # family-wise false alarm 1e-6
    rows.append(compare(_SECTION, f"sampled (a, s') | s={s0}, n={n}",
                        "standardised residuals z", "0 (exact law pi P)", z, np.zeros_like(z),
                        z_crit, note=f"chi-square {stat:.1f} on {df} df, p = "
                        f"{chi2.sf(stat, df):.3f}; tolerance = |z| for a family-wise "
                        f"false-alarm rate 1e-6; zero-probability cells must be empty"))
    return rows
