"""Policy-optimisation algorithms on finite MDPs, with per-iteration records (SCOPE N1, N5, N9).

Each algorithm repeats one update from the current parameters (derivations/algorithms.md):

    policy-gradient ascent   theta <- theta + alpha grad eta                    (AL1)
    natural policy gradient  theta <- theta + alpha F^+ grad eta                (AL2)
    TRPO (exact or sampled)  theta <- trpo_step(theta)   (refpg.trpo, T1-T5)    (AL3)
    CPI                      pi <- (1 - alpha*) pi + alpha* greedy(pi)          (AL4)

and records, per iteration ``k``: the exact ``eta`` before and after, the
exact ``KL_mean`` (over ``d_pi_old``) and ``KL_max`` of the update, the
surrogate improvement the algorithm itself measured (exact ``L`` or the
sampled surrogate, with its standard error), the accepted step fraction and
whether the step was accepted. Exact quantities are always computed by
linear algebra, so a sampled run can be judged against the truth.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .bounds import _kl_rows
from .cpi import conservative_policy_iteration, greedy_policy, mixture_policy
from .evaluation import check_policy_table, evaluate
from .identities import advantage_gain
from .mdp import FiniteMDP
from .natural import DEFAULT_RCOND, natural_gradient
from .policies.base import SoftmaxPolicy
from .policy_gradient import exact_policy_gradient, policy_table
from .sampling import sample_batch
from .surrogate import single_path_surrogate, vine_surrogate
from .trpo import TRPOConfig, trpo_step_exact, trpo_step_sampled
from .validation import check_positive_float, check_positive_int, check_rng

__all__ = ["IterationRecord", "AlgorithmRun", "table_kl", "policy_gradient_ascent",
           "natural_policy_gradient", "trpo_exact", "trpo_sampled", "cpi_with_records"]


@dataclass(frozen=True)
class IterationRecord:
    """One iteration ``k`` of an algorithm.

    ``eta``/``eta_new``: exact ``eta`` before/after; ``kl_mean``/``kl_max``:
    exact ``KL(pi_old || pi_new)`` averaged over ``d_pi_old`` / maximised over
    states; ``surrogate_improvement``: what the algorithm measured (exact
    ``L_old(pi_new) - eta_old``, or the sampled surrogate's improvement);
    ``improvement_std_error`` (0 for exact algorithms); ``step_fraction``;
    ``accepted``; ``info`` extra per-algorithm numbers (CG iterations,
    residual, CPI's alpha...). derivations/algorithms.md#records
    """

    iteration: int
    eta: float
    eta_new: float
    kl_mean: float
    kl_max: float
    surrogate_improvement: float
    improvement_std_error: float
    step_fraction: float
    accepted: bool
    info: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AlgorithmRun:
    """A run: ``algorithm`` name, ``thetas: (K+1, d)`` (None for CPI, which has no
    parameters), ``policies: (K+1, S, A)``, ``etas: (K+1,)`` exact, ``records``
    (``K`` ``IterationRecord``). derivations/algorithms.md#records
    """

    algorithm: str
    thetas: np.ndarray | None
    policies: np.ndarray
    etas: np.ndarray
    records: tuple

    @property
    def n_iter(self) -> int:
        """``K``."""
        return len(self.records)


def table_kl(mdp, pi_old, pi_new):
    """``(KL_mean, KL_max)`` of ``KL(pi_old(.|s) || pi_new(.|s))`` for tables ``(S, A)``,
    mean over ``d_pi_old``; terms with ``pi_old = 0`` count 0, ``pi_new = 0 < pi_old`` gives inf.

    derivations/algorithms.md#records
    """
    p = np.asarray(check_policy_table(mdp, pi_old, name="pi_old"), dtype=float)
    q = np.asarray(check_policy_table(mdp, pi_new, name="pi_new"), dtype=float)
    per = _kl_rows(p, q)        # non-negative, no difference of logs (bounds.md)
    d = np.asarray(evaluate(mdp, p).d, dtype=float)
    return float(d @ per), float(per.max())


def _check(mdp, policy, theta0):
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"mdp must be a FiniteMDP; got {type(mdp).__name__}")
    if not isinstance(policy, SoftmaxPolicy) or policy.n_states is None:
        raise TypeError(f"policy must be a tabular-capable SoftmaxPolicy; got {policy!r}")
    theta = policy.check_theta(theta0, "theta0")
    if np.iscomplexobj(theta):
        raise TypeError("theta0 must be real")
    policy_table(mdp, policy, theta)
    return np.array(theta, dtype=float)


def _run(name, mdp, policy, theta0, n_iter, update):
    theta = _check(mdp, policy, theta0)
    n_iter = check_positive_int("n_iter", n_iter, minimum=0)
    thetas = [theta]
    pis = [np.asarray(policy.probs_table(theta), dtype=float)]
    etas = [float(evaluate(mdp, pis[0]).eta)]
    d_old = np.asarray(evaluate(mdp, pis[0]).d, dtype=float)
    states = np.arange(mdp.n_states)
    records = []
    for k in range(n_iter):
        new, measured, se, frac, ok, info = update(theta)
        pi_new = np.asarray(policy.probs_table(new), dtype=float)
        eta_new = float(evaluate(mdp, pi_new).eta)
        per = policy.kl(theta, new, states)             # from logits: no underflow
        klm, klx = float(d_old @ per), float(np.max(per))
        d_old = np.asarray(evaluate(mdp, pi_new).d, dtype=float)
        records.append(IterationRecord(k, etas[-1], eta_new, klm, klx, measured, se, frac, ok,
                                       info))
        theta = new
        thetas.append(theta)
        pis.append(pi_new)
        etas.append(eta_new)
    return AlgorithmRun(name, np.stack(thetas), np.stack(pis), np.array(etas), tuple(records))


def _improvement_of_tables(mdp, pi, pi_new):
    """``L_pi(pi_new) - eta(pi)`` (I4) in the A form (``refpg.identities.advantage_gain``)."""
    return float(advantage_gain(evaluate(mdp, pi), pi, pi_new))


def _exact_improvement(mdp, policy, theta, new):
    return _improvement_of_tables(mdp, policy.probs_table(theta), policy.probs_table(new))


def policy_gradient_ascent(mdp, policy, theta0, *, step_size, n_iter):
    """(AL1) ``theta <- theta + step_size grad eta`` with the exact gradient (PG1); ``AlgorithmRun``.

    derivations/algorithms.md#policy-gradient-ascent
    """
    alpha = check_positive_float("step_size", step_size)

    def update(theta):
        new = theta + alpha * exact_policy_gradient(mdp, policy, theta)
        return new, _exact_improvement(mdp, policy, theta, new), 0.0, 1.0, True, {}

    return _run("policy_gradient_ascent", mdp, policy, theta0, n_iter, update)


def natural_policy_gradient(mdp, policy, theta0, *, step_size, n_iter, rcond=DEFAULT_RCOND):
    """(AL2) ``theta <- theta + step_size F^+ grad eta`` (refpg.natural.natural_gradient, exact).

    For the tabular softmax this is the closed-form update
    ``pi <- pi exp(step A / (1-gamma))`` (N7 of derivations/natural.md), as long as
    no Fisher eigenvalue that matters falls below ``rcond`` times the largest:
    with probabilities below about ``rcond`` (1e-10 by default) those directions
    are cut and the update departs from (N7); pass e.g. ``rcond=1e-14`` there.
    derivations/algorithms.md#natural-policy-gradient
    """
    alpha = check_positive_float("step_size", step_size)

    def update(theta):
        new = theta + alpha * natural_gradient(mdp, policy, theta, rcond=rcond)
        return new, _exact_improvement(mdp, policy, theta, new), 0.0, 1.0, True, {}

    return _run("natural_policy_gradient", mdp, policy, theta0, n_iter, update)


def trpo_exact(mdp, policy, theta0, *, n_iter, config=TRPOConfig(), rng=None):
    """(AL3) exact-mode TRPO (``refpg.trpo.trpo_step_exact``) for ``n_iter`` steps; ``AlgorithmRun``.

    With the default acceptance rule every accepted step has exact
    ``KL_mean <= max_kl`` and exact ``L`` improvement > 0. ``rng`` is needed
    only with ``config.cg_x0 = "random"`` (the CG start of sb3-contrib).
    derivations/algorithms.md#trpo
    """
    def update(theta):
        st = trpo_step_exact(mdp, policy, theta, config, rng=rng)
        info = dict(cg_iterations=st.cg.n_iter if st.cg else 0,
                    cg_residual=st.cg.residual_norm if st.cg else 0.0,
                    n_backtracks=st.line_search.n_backtracks if st.line_search else 0,
                    expected_improvement=st.expected_improvement, reason=st.reason)
        return st.theta, st.improvement, 0.0, st.step_fraction, st.accepted, info

    return _run("trpo_exact", mdp, policy, theta0, n_iter, update)


def trpo_sampled(mdp, policy, theta0, rng, *, n_iter, n_episodes, horizon=None,
                 config=TRPOConfig(), estimator="single_path", state_weighting="discounted",
                 kl_weighting="discounted", vine_options=None):
    """(AL3) sampled-mode TRPO: each iteration samples ``n_episodes`` episodes of the current
    policy (``refpg.sampling.sample_batch``, ``horizon`` default ``mdp.horizon``), builds a
    single-path or vine surrogate (``vine_options``: keyword arguments of
    ``vine_surrogate``) and takes ``trpo_step_sampled``. Records carry the
    sampled improvement, its standard error (iid episodes) and the exact
    ``eta``, ``KL_mean`` and ``KL_max``. derivations/algorithms.md#trpo
    """
    check_rng(rng)
    N = check_positive_int("n_episodes", n_episodes)
    if estimator not in ("single_path", "vine"):
        raise ValueError(f"estimator must be 'single_path' or 'vine'; got {estimator!r}")
    H = mdp.horizon if horizon is None else horizon
    if H is None:
        raise ValueError("horizon must be given (mdp.horizon is None)")
    H = check_positive_int("horizon", H)

    def update(theta):
        batch = sample_batch(mdp, policy, theta, N, rng, horizon=H)
        if estimator == "single_path":
            sur = single_path_surrogate(policy, theta, batch, mdp.gamma,
                                        state_weighting=state_weighting,
                                        kl_weighting=kl_weighting,
                                        kl_direction=config.kl_direction)
        else:
            sur = vine_surrogate(mdp, policy, theta, batch, rng,
                                 state_weighting=state_weighting, kl_weighting=kl_weighting,
                                 kl_direction=config.kl_direction, **(vine_options or {}))
        st = trpo_step_sampled(sur, config, rng=rng)
        imp, se = sur.improvement(st.theta)
        info = dict(cg_iterations=st.cg.n_iter if st.cg else 0,
                    cg_residual=st.cg.residual_norm if st.cg else 0.0,
                    n_backtracks=st.line_search.n_backtracks if st.line_search else 0,
                    sampled_kl=st.kl, expected_improvement=st.expected_improvement,
                    n_env_steps=sur.n_env_steps, reason=st.reason)
        return st.theta, imp, se, st.step_fraction, st.accepted, info

    return _run(f"trpo_sampled/{estimator}", mdp, policy, theta0, n_iter, update)


def cpi_with_records(mdp, pi0, *, n_iter, tol=1e-6):
    """(AL4) conservative policy iteration, delegated to ``refpg.cpi.conservative_policy_iteration``,
    reported as an ``AlgorithmRun`` (``thetas = None``; ``step_fraction`` is CPI's ``alpha``;
    ``surrogate_improvement = L_pi(pi_new) - eta(pi)``). derivations/algorithms.md#cpi
    """
    res = conservative_policy_iteration(mdp, pi0, n_iter=n_iter, tol=tol)
    pis = [np.asarray(check_policy_table(mdp, pi0, name="pi0"), dtype=float)]
    records = []
    for k, alpha in enumerate(res.alphas):
        pi = pis[-1]
        new = np.asarray(mixture_policy(pi, greedy_policy(mdp, pi), alpha), dtype=float)
        klm, klx = table_kl(mdp, pi, new)
        records.append(IterationRecord(
            k, float(res.etas[k]), float(res.etas[k + 1]), klm, klx,
            _improvement_of_tables(mdp, pi, new), 0.0,
            float(alpha), True, dict(guaranteed=float(res.guaranteed[k]),
                                     advantage=float(res.advantages[k]))))
        pis.append(new)
    return AlgorithmRun("cpi", None, np.stack(pis), np.asarray(res.etas, dtype=float),
                        tuple(records))
