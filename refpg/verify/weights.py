"""V2: verify a user's importance weights, whole-trajectory and per-decision (SCOPE V2).

From per-step log-probabilities of the actions under the target policy
(``log_target``) and the behaviour policy that drew them (``log_behaviour``),
with episodes back to back in a row (``dones``):

    log W_{0:t} = sum_{u = start}^{t} [log pi_target(a_u|s_u) - log pi_behaviour(a_u|s_u)]   (W1)
    log W       = log W_{0:end}                         (whole trajectory)                   (W2)

(CONVENTIONS.md: the ratio is target over behaviour; derivations/estimators.md#importance-sampling).
``verify_importance_weights`` compares the user's weights (or log-weights) with
refpg's on a battery that includes extreme log-probabilities, where the naive
``exp(log p) / exp(log q)`` is ``0 / 0``, running weights that leave the
float64 range and come back, where a product of ratios overflows, and a
1000-step episode whose probability products underflow.
derivations/verify_returns.md#importance-weights
"""
from __future__ import annotations

import numpy as np

from ..importance import log_importance_weights as _log_ratios
from ..returns import linear_recurrence
from .core import Case, Outcome
from .layouts import (LAYOUTS, _bool, _choice, _float, _int, _in_user_layout, _run_cases, bind,
                      call_in_layout, render)
from .vectors import vector

__all__ = ["importance_cases", "reference_log_weights", "verify_importance_weights",
           "golden_importance_weights"]

_FIELDS = ("log_target", "log_behaviour", "dones")
#: log=False: cases whose reference weights leave [e^-_LOG_RANGE, e^_LOG_RANGE] are skipped.
_LOG_RANGE = 700.0


def reference_log_weights(inputs, weights="per_decision"):
    """Log importance weights (W1) or (W2) at every step: ``(N, T)``.

    ``inputs``: ``log_target, log_behaviour: (N, T)``, ``dones: (N, T)`` bool
    (an episode ends after step ``t``; the row end ends one too). Per-decision:
    the log-weight of the episode's actions up to ``t``; trajectory: the
    episode's total at each of its steps. Per-step log-ratios come from
    ``refpg.importance.log_importance_weights``, the running sums from
    ``refpg.returns.linear_recurrence`` (never a product of ratios).
    derivations/verify_returns.md#importance-weights
    """
    weights = _choice("weights", weights, ("per_decision", "trajectory"))
    lt = np.asarray(inputs["log_target"], float)
    lb = np.asarray(inputs["log_behaviour"], float)
    dones = np.asarray(inputs["dones"], bool)
    N, T = lt.shape
    x = _log_ratios(lt.ravel(), lb.ravel()).reshape(N, T)
    # forward running sum y_t = x_t + [step t-1 did not end] y_{t-1}, as a backward
    # recurrence on the reversed rows
    c = np.zeros((N, T))
    c[:, 1:] = ~dones[:, :-1]
    y = linear_recurrence(x[:, ::-1], c[:, ::-1])[:, ::-1]
    if weights == "per_decision":
        return y
    end = dones.copy()
    end[:, -1] = True
    return linear_recurrence(np.where(end, y, 0.0), (~end).astype(float))


def _case(name, lt, lb, dones=None):
    lt, lb = np.atleast_2d(np.asarray(lt, float)), np.atleast_2d(np.asarray(lb, float))
    dones = np.zeros(lt.shape, bool) if dones is None else np.asarray(dones, bool)
    return Case(name, {"log_target": lt, "log_behaviour": lb, "dones": dones},
                time_fields=_FIELDS)


def _logp(rng, shape, n_actions=4, scale=1.5):
    """Log-probabilities of actions drawn from random categorical distributions."""
    logits = rng.normal(0.0, scale, shape + (n_actions,))
    logp = logits - np.log(np.sum(np.exp(logits), axis=-1, keepdims=True))
    return np.round(logp[..., 0], 4)


def importance_cases(seed=0, n_random=24, *, long=True):
    """The battery for importance weights: designed edge cases, then seeded random ones.

    derivations/verify_returns.md#importance-weights
    """
    rng = np.random.default_rng(seed)
    c = [_case("single step", [[-0.7]], [[-1.2]])]
    c.append(_case("one episode", _logp(rng, (1, 6)), _logp(rng, (1, 6))))
    d = np.zeros((2, 7), bool)
    d[0, 2] = d[0, 4] = d[1, 0] = True
    c.append(_case("several episodes per row (the weight restarts at each episode)",
                   _logp(rng, (2, 7)), _logp(rng, (2, 7)), d))
    c.append(_case("one-step episodes", _logp(rng, (2, 3)), _logp(rng, (2, 3)),
                   np.ones((2, 3), bool)))
    same = _logp(rng, (2, 4))
    c.append(_case("equal policies (every weight exactly 1)", same, same.copy()))
    c.append(_case("positive log-densities (continuous actions)",
                   np.round(rng.normal(2.0, 3.0, (2, 5)), 4),
                   np.round(rng.normal(2.0, 3.0, (2, 5)), 4)))
    c.append(_case("extreme log-probabilities (exp(log p) / exp(log q) is 0 / 0)",
                   [[-800.0, -1000.0, -5.0]], [[-790.0, -1003.0, -6.0]]))
    c.append(_case("weights near the float64 limits (log-weights 300, 600, 690)",
                   [[-1.0, -2.0, -3.0]], [[-301.0, -302.0, -93.0]]))
    c.append(_case("running weight leaves the float64 range and comes back",
                   [[-1.0, -1.0, -401.0, -391.0]], [[-401.0, -401.0, -1.0, -1.0]]))
    for k in range(int(n_random)):
        N, T = int(rng.integers(1, 5)), int(rng.integers(1, 13))
        if N == T:
            T += 1
        dones = rng.random((N, T)) < 0.2
        if rng.random() < 0.3:
            lt = np.round(rng.normal(0.0, 2.0, (N, T)), 4)
            lb = np.round(lt + rng.normal(0.0, 1.0, (N, T)), 4)
        else:
            lt, lb = _logp(rng, (N, T)), _logp(rng, (N, T))
        c.append(_case(f"random buffer {k} (seed {seed})", lt, lb, dones))
    if long:
        lb = np.round(-1.5 + 0.3 * rng.standard_normal((1, 1000)), 4)
        lt = np.round(lb + 0.1 * rng.standard_normal((1, 1000)), 4)
        c.append(_case("long episode (T = 1000): products of probabilities underflow", lt, lb))
    return c


def verify_importance_weights(fn, *, layout="batch_major", weights="per_decision", log=False,
                              rtol=None, atol=None, n_random=24, seed=0, shrink=True):
    """Verify a user's importance weights (W1) / (W2); returns a ``VerifyReport``.

    ``weights``: ``"per_decision"`` (``W_{0:t}``, the product of the ratios of
    the episode's actions up to ``t``) or ``"trajectory"`` (the whole
    episode's ``W``). ``log``: the user returns log-weights (True) or weights
    (False; cases whose weights leave ``[e^-700, e^700]`` are then skipped).
    Calling convention (derivations/verify_returns.md#layouts-and-calling-conventions):
    ``fn(log_target, log_behaviour, dones)`` with ``(N, T)`` arrays
    (``"batch_major"``; ``(T, N)`` with ``"time_major"``) -> ``(N, T)``, where a
    trajectory weight is repeated at every step of its episode (it multiplies
    each of them in the estimator); ``"episodes"``: ``fn(log_target (L,),
    log_behaviour (L,))`` -> ``(L,)`` per decision, a number per trajectory.
    Example::

        def per_decision(log_target, log_behaviour):       # layout="episodes"
            return np.exp(np.cumsum(log_target - log_behaviour))
        verify_importance_weights(per_decision, layout="episodes").passed   # True

    A PyTorch function converts the inputs (``torch.as_tensor``); tensors
    returned are converted back. Default tolerance: ``rtol = 1e-9, atol =
    1e-9`` on log-weights, ``rtol = 1e-8, atol = 0`` on weights.
    derivations/verify_returns.md#importance-weights
    """
    layout = _choice("layout", layout, LAYOUTS)
    weights = _choice("weights", weights, ("per_decision", "trajectory"))
    log = _bool("log", log)
    rtol = _float("rtol", (1e-9 if log else 1e-8) if rtol is None else rtol, lo=0.0)
    atol = _float("atol", (1e-9 if log else 0.0) if atol is None else atol, lo=0.0)
    shrink = _bool("shrink", shrink)
    cases = importance_cases(_int("seed", seed), _int("n_random", n_random))
    per_episode = weights == "trajectory" and layout == "episodes"
    offered = ("log_target", "log_behaviour") + (() if layout == "episodes" else ("dones",))
    binding = bind(fn, offered)

    def reference(case):
        lw = reference_log_weights(case.inputs, weights)
        return lw if log else np.exp(lw)

    def in_domain(case):
        return log or bool(np.all(np.abs(reference_log_weights(case.inputs, weights))
                                  <= _LOG_RANGE))

    skipped = [c for c in cases if not in_domain(c)]
    cases = [c for c in cases if in_domain(c)]

    def steps(case):
        return {k: np.asarray(case.inputs[k], float) for k in ("log_target", "log_behaviour")} | \
            ({"dones": np.asarray(case.inputs["dones"], bool)} if layout != "episodes" else {})

    def evaluate(case):
        if not in_domain(case):
            return np.zeros(()), Outcome(np.zeros(()))
        out = call_in_layout(fn, binding, layout, steps(case), {},
                             ends=np.asarray(case.inputs["dones"], bool),
                             per_episode=per_episode)
        return reference(case), out

    def to_user(case):
        return render(layout, {k: v for k, v in steps(case).items() if k in binding.names}, {},
                      ends=np.asarray(case.inputs["dones"], bool))

    notes = [n for n in [binding.note()] if n]
    if skipped:
        notes.append(f"log=False: {len(skipped)} case(s) whose weights leave float64's range "
                     f"[e^-{_LOG_RANGE:g}, e^{_LOG_RANGE:g}] were skipped ("
                     + "; ".join(c.name for c in skipped) + "); verify log=True to cover them")
    if weights == "trajectory" and layout != "episodes":
        notes.append("weights='trajectory': every step carries its episode's whole weight")
    conventions = {"layout": layout, "weights": weights, "log": log,
                   "ratio": "target / behaviour (CONVENTIONS.md w)",
                   "keywords": ", ".join(binding.names)}
    return _in_user_layout(_run_cases("importance_weights", cases, evaluate,
                                      tolerance=(rtol, atol), conventions=conventions,
                                      notes=notes, shrink=shrink, to_user_layout=to_user), layout)


def golden_importance_weights():
    """Golden vectors of log importance weights, per decision and per trajectory.

    derivations/verify_returns.md#golden-vectors
    """
    out = []
    for case in importance_cases(0, 4, long=False):
        out.append(vector(case.name, f"log importance weights (W1), (W2): {case.name}",
                          "refpg.verify.weights.reference_log_weights", case.inputs,
                          {"log_weights_per_decision": reference_log_weights(case.inputs),
                           "log_weights_trajectory":
                               reference_log_weights(case.inputs, "trajectory")},
                          rtol=1e-12, atol=1e-10, conventions={"ratio": "target / behaviour"}))
    return ("Log importance weights log W_{0:t} = sum_{u<=t} (log_target - log_behaviour) over "
            "each episode (per decision), and the episode total at each of its steps "
            "(trajectory); weights are exp of these.",
            "batch-major: log_target, log_behaviour (N, T) float64, log-probabilities of the "
            "actions taken; dones (N, T) bool, an episode ends after step t (and at the row "
            "end); a row may hold several episodes.", out)
