"""V2: verify a user's policy-gradient estimator against refpg's named estimators.

The user's function receives a batch that refpg sampled from a tabular MDP under a
tabular-softmax policy with logits ``z: (S, A)`` (``pi(a|s) = softmax(z[s])_a``) and
returns an estimate of the gradient with respect to the logits, ``(S, A)``
(derivations/verify_estimators.md#the-calling-convention):

    user_estimator(logits, states, actions, rewards, mask, gamma) -> (S, A)
    user_estimator(logits, states, actions, rewards, mask, gamma, values=values)  # baseline="value"

It claims to implement one named estimator (G0) of refpg.estimators:

    estimator="reinforce"     c_t = R - b                              (G2)
    estimator="reward_to_go"  c_t = w_t (G_t - b_t),  w_t = gamma^t ("discounted") or 1 ("uniform")
    baseline = "none" | "constant:<b>" | "mean" | "leave_one_out" | "value" (b_t = V_t(s_t))

* ``verify_estimator`` (deterministic mode): the same batches go to the user's
  function and to refpg's estimator; they must agree to ``rtol = 1e-8``.
* ``refpg.verify.stats.verify_estimator_mean`` (statistical mode): ``n_batches``
  independent batches; the mean of the user's estimates is compared with the EXACT
  expected value of the named estimator (``exact_estimator_mean``) by a test whose
  false-alarm rate is proved ``<= alpha = 1e-4``, and the report gives the smallest
  bias it detects.

Neither ever raises because of the user's function.
"""
from __future__ import annotations

import numbers
from dataclasses import dataclass

import numpy as np

from ..batch import Batch
from ..estimators import estimator_coefficients, score_contributions
from ..evaluation import evaluate_finite_horizon
from ..mdp import random_mdp
from ..moments import dp_moments, time_indexed_gradient
from ..policies.tabular import TabularSoftmaxPolicy
from ..sampling import sample_batch
from ..validation import as_float_array, check_gamma, check_positive_int
from .core import Case, VerifyReport, compare_outputs, run_cases, safe_call
from .vectors import vector

__all__ = ["EstimatorClaim", "reference_estimate", "verify_estimator", "exact_estimator_mean",
           "golden_estimator_vectors"]

LAYOUTS = ("batch_major", "time_major", "episodes")
SIGNS = ("ascent", "loss")
REDUCTIONS = ("episodes", "steps")
_FIELDS = ("states", "actions", "rewards", "mask", "values")


# --------------------------------------------------------------------------- the claim
@dataclass(frozen=True)
class EstimatorClaim:
    """What the user's function claims to compute; options as plain strings.

    ``baseline`` is parsed into ``baseline_kind`` (``none``, ``constant``, ``mean``,
    ``leave_one_out``, ``value``) and ``baseline_value`` (the constant).
    derivations/verify_estimators.md#named-estimators-and-options
    """

    estimator: str = "reward_to_go"
    weighting: str = "discounted"
    baseline: str = "none"
    layout: str = "batch_major"
    sign: str = "ascent"
    reduction: str = "episodes"

    def __post_init__(self):
        for name, allowed in (("estimator", ("reinforce", "reward_to_go")),
                              ("weighting", ("discounted", "uniform")), ("layout", LAYOUTS),
                              ("sign", SIGNS), ("reduction", REDUCTIONS)):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {allowed}; got {getattr(self, name)!r}")
        if self.estimator == "reinforce" and self.weighting != "discounted":
            raise ValueError("weighting applies to estimator='reward_to_go'; REINFORCE weights "
                             "every step by the discounted return R (leave weighting='discounted')")
        kind, _ = _parse_baseline(self.baseline)
        if kind == "value" and self.estimator == "reinforce":
            raise ValueError("baseline='value' (b_t = V_t(s_t)) applies to estimator="
                             "'reward_to_go'; REINFORCE takes none, constant:<b>, mean or "
                             "leave_one_out")

    @property
    def baseline_kind(self):
        return _parse_baseline(self.baseline)[0]

    @property
    def baseline_value(self):
        return _parse_baseline(self.baseline)[1]

    def refpg_baseline(self):
        """``baseline`` argument of refpg.estimators (``value`` handled separately)."""
        kind, b = _parse_baseline(self.baseline)
        return {"none": 0.0, "constant": b, "value": 0.0}.get(kind, kind)

    def describe(self):
        return {"estimator": self.estimator, "weighting": self.weighting,
                "baseline": self.baseline, "layout": self.layout, "sign": self.sign,
                "reduction": self.reduction}

    def departures(self):
        out = []
        if self.sign == "loss":
            out.append("sign='loss': the function returns the gradient of a loss, minus the "
                       "estimate (refpg maximises objectives); no cost")
        if self.reduction == "steps":
            out.append("reduction='steps': divides by the number of valid steps, not by N "
                       "(spinningup, SB3, CleanRL): a random factor N / sum_i L_i when lengths "
                       "vary, so the mean is not a fixed multiple of the gradient "
                       "(derivations/estimators.md#pitfalls)")
        if self.estimator == "reward_to_go" and self.weighting == "uniform":
            out.append("weighting='uniform' (G4): every step weighted 1, not gamma^t; its mean "
                       "is not grad J_H when gamma < 1 "
                       "(derivations/estimators.md#two-discountings)")
        if self.baseline_kind == "mean":
            out.append("baseline='mean' includes the episode itself: mean (1 - 1/N) times the "
                       "leave-one-out mean, bias -grad/N (B2); leave_one_out is unbiased")
        if self.layout == "time_major":
            out.append("layout='time_major': (T, N) arrays, refpg's (N, T) transposed; no cost")
        return tuple(out)


def _parse_baseline(text):
    if isinstance(text, numbers.Real) and not isinstance(text, bool):
        b = float(text)
        if not np.isfinite(b):
            raise ValueError(f"baseline constant must be finite; got {text!r}")
        return "constant", b
    if not isinstance(text, str):
        raise ValueError(f"baseline must be a string; got {text!r}")
    if text in ("none", "mean", "leave_one_out", "value"):
        return text, 0.0
    if text.startswith("constant:"):
        try:
            b = float(text.split(":", 1)[1])
        except ValueError:
            b = float("nan")
        if np.isfinite(b):
            return "constant", b
    raise ValueError(f"baseline must be 'none', 'constant:<b>' (e.g. 'constant:0.5'), 'mean', "
                     f"'leave_one_out' or 'value'; got {text!r}")


# --------------------------------------------------------------------------- reference
def _as_batch(logits, states, actions, rewards, mask):
    """A refpg ``Batch`` from canonical ``(N, T)`` arrays (one episode per row)."""
    S, A = logits.shape
    mask = np.asarray(mask, dtype=bool)
    lengths = mask.sum(axis=1)
    truncated = np.zeros_like(mask)
    has = lengths > 0
    truncated[np.flatnonzero(has), lengths[has] - 1] = True
    top = logits.max(axis=1, keepdims=True)
    logp = logits - top - np.log(np.sum(np.exp(logits - top), axis=1, keepdims=True))
    s = np.asarray(states, dtype=np.int64)
    a = np.asarray(actions, dtype=np.int64)
    return Batch(states=s, actions=a, rewards=rewards, log_probs=np.where(mask, logp[s, a], 0.0),
                 next_states=np.zeros_like(s), terminated=np.zeros_like(mask),
                 truncated=truncated, mask=mask, n_states=S, n_actions=A)


def reference_estimate(logits, states, actions, rewards, mask, gamma, *, values=None,
                       estimator="reward_to_go", weighting="discounted", baseline="none",
                       sign="ascent", reduction="episodes"):
    """refpg's named estimator in the user's convention: ``(S, A)``.

    ``logits: (S, A)``; ``states, actions: (N, T)`` int; ``rewards: (N, T)``;
    ``mask: (N, T)`` bool (a prefix per row, padding carries zeros); ``values: (N, T)``
    (``V_t(s_t)``, for ``baseline="value"``). Computes (G0) with the coefficients of
    the claim (refpg.estimators.estimator_coefficients; for ``"value"``
    ``c_t = w_t (G_t - values_t)``), then ``sign="loss"`` negates and
    ``reduction="steps"`` multiplies by ``N / sum_i L_i`` (VE1).
    derivations/verify_estimators.md#the-calling-convention
    """
    claim = EstimatorClaim(estimator, weighting, baseline, "batch_major", sign, reduction)
    logits = as_float_array("logits", logits, ndim=2)
    rewards = as_float_array("rewards", rewards, ndim=2)
    gamma = check_gamma(gamma)
    batch = _as_batch(logits, states, actions, rewards, mask)
    c = estimator_coefficients(batch, gamma, estimator=estimator, weighting=weighting,
                               baseline=claim.refpg_baseline())
    if claim.baseline_kind == "value":
        if values is None:
            raise ValueError("baseline='value' needs values: (N, T), V_t(s_t) on valid steps")
        v = as_float_array("values", values, shape=batch.mask.shape)
        T = batch.max_steps
        w = gamma ** np.arange(T) if weighting == "discounted" else np.ones(T)
        c = c - np.where(batch.mask, w[None, :] * v, 0.0)
    S, A = logits.shape
    policy = TabularSoftmaxPolicy(S, A)
    g = score_contributions(batch, policy, logits.ravel(), c).sum(axis=0)
    if reduction == "steps":
        n = int(batch.mask.sum())
        if n == 0:
            raise ValueError("reduction='steps' on a batch without valid steps")
        g = g / n
    else:
        g = g / batch.n_episodes
    return (-g if sign == "loss" else g).reshape(S, A)


def _ascent_per_episode(out, claim, mask):
    """Undo ``sign`` and ``reduction`` on a user output ``(S, A)``: refpg's convention, flat."""
    g = np.asarray(out, dtype=float).ravel()
    if claim.sign == "loss":
        g = -g
    if claim.reduction == "steps":
        g = g * (np.sum(mask) / mask.shape[0])
    return g


# --------------------------------------------------------------------------- layouts
def _user_inputs(inputs, claim):
    """The case ``inputs`` (canonical ``(N, T)``) in the user's layout, as fresh copies."""
    out = {"logits": np.array(inputs["logits"], dtype=float)}
    mask = np.asarray(inputs["mask"], dtype=bool)
    names = ("states", "actions", "rewards", "mask")
    if claim.baseline_kind == "value":
        names = names + ("values",)
    for f in names:
        x = np.array(inputs[f])
        if claim.layout == "time_major":
            x = np.ascontiguousarray(x.T)
        elif claim.layout == "episodes":
            x = [x[i, :L].copy() for i, L in enumerate(mask.sum(axis=1))]
        out[f] = x
    out["gamma"] = float(inputs["gamma"])
    return out


def _call_user(fn, inputs, claim):
    u = _user_inputs(inputs, claim)
    kwargs = {"values": u.pop("values")} if "values" in u else {}
    args = (u["logits"], u["states"], u["actions"], u["rewards"], u["mask"], u["gamma"])
    return safe_call(fn, args, kwargs, shape=np.shape(inputs["logits"]))


def _check_user_fn(fn):
    if not callable(fn):
        raise TypeError(f"user_estimator must be callable; got {type(fn).__name__}")


# --------------------------------------------------------------------------- cases
#: deterministic-mode configurations: (name, S, A, horizon, gamma, n_terminal, N, logit scale)
_CONFIGS = (
    ("episodes end mid-batch", 3, 2, 5, 0.9, 1, 6, 1.0),
    ("non-square, full-length episodes", 4, 3, 6, 0.95, 0, 5, 0.5),
    ("gamma = 1", 3, 2, 4, 1.0, 1, 4, 1.0),
    ("gamma = 0", 3, 3, 3, 0.0, 1, 4, 1.0),
    ("one-step episodes", 3, 2, 1, 0.9, 0, 3, 1.0),
    ("two episodes, near-deterministic policy", 5, 2, 8, 0.99, 2, 2, 4.0),
    ("larger batch", 4, 4, 10, 0.9, 1, 16, 1.0),
)


def _sampled_inputs(rng, S, A, H, gamma, n_terminal, N, scale, *, sparsity=0.0):
    """One case's inputs: a random MDP, logits and a batch of ``N`` sampled episodes."""
    mdp = random_mdp(rng, S, A, gamma=gamma, n_terminal=n_terminal, horizon=H,
                     sparsity=sparsity)
    policy = TabularSoftmaxPolicy.for_mdp(mdp)
    theta = policy.init_params(rng, scale=scale)
    batch = sample_batch(mdp, policy, theta, N, rng, horizon=H)
    V = evaluate_finite_horizon(mdp, policy.probs_table(theta), H).V
    t = np.broadcast_to(np.arange(H), batch.mask.shape)
    values = np.where(batch.mask, V[t, batch.states], 0.0)
    inputs = {"logits": theta.reshape(S, A), "states": np.array(batch.states),
              "actions": np.array(batch.actions), "rewards": np.array(batch.rewards),
              "mask": np.array(batch.mask), "values": values, "gamma": float(gamma)}
    return mdp, policy, theta, inputs


def _deterministic_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for name, S, A, H, gamma, nt, N, scale in _CONFIGS:
        inputs = _sampled_inputs(rng, S, A, H, gamma, nt, N, scale)[3]
        cases.append(Case(name, inputs, time_fields=_FIELDS))
    return cases


def _reference_for(inputs, claim):
    i = inputs
    return reference_estimate(i["logits"], i["states"], i["actions"], i["rewards"], i["mask"],
                              i["gamma"], values=i["values"], estimator=claim.estimator,
                              weighting=claim.weighting, baseline=claim.baseline,
                              sign=claim.sign, reduction=claim.reduction)


def _diagnose(inputs, got, claim, rtol):
    """Named conventions (other than the claim) that reproduce ``got`` on this case."""
    found = []
    baselines = ["none", "mean", "leave_one_out", "value"]
    if claim.baseline_kind == "constant":
        baselines.append(claim.baseline)
    for est in ("reinforce", "reward_to_go"):
        for w in (("discounted",) if est == "reinforce" else ("discounted", "uniform")):
            for b in baselines:
                if est == "reinforce" and b == "value":
                    continue
                for sign in SIGNS:
                    for red in REDUCTIONS:
                        alt = EstimatorClaim(est, w, b, claim.layout, sign, red)
                        if alt == claim:
                            continue
                        try:
                            ref = _reference_for(inputs, alt)
                        except ValueError:
                            continue
                        atol = rtol * max(float(np.max(np.abs(ref))), 1e-300)
                        if compare_outputs(got, ref, rtol=rtol, atol=atol)[0]:
                            found.append(", ".join(f"{k}={v}" for k, v in alt.describe().items()
                                                   if k != "layout"))
    return found


def verify_estimator(user_estimator, *, estimator="reward_to_go", weighting="discounted",
                     baseline="none", layout="batch_major", sign="ascent", reduction="episodes",
                     rtol=1e-8, seed=0):
    """Deterministic mode: the user's estimate equals refpg's on the same batches (VE2).

    Calling convention (derivations/verify_estimators.md#the-calling-convention)::

        user_estimator(logits, states, actions, rewards, mask, gamma[, values=values]) -> (S, A)

    ``logits: (S, A)`` float64 (``pi(a|s) = softmax(logits[s])_a``); ``states``,
    ``actions``: int64, ``rewards``: float64, ``mask``: bool, and (``baseline="value"``
    only) ``values = V_t(s_t)``: float64, all ``(N, T)`` for ``layout="batch_major"``,
    ``(T, N)`` for ``"time_major"``, or lists of ``N`` one-dimensional per-episode
    arrays for ``"episodes"`` (``mask`` then all True). Padding (mask False) carries
    zeros. ``gamma``: float. The output (NumPy array, list or tensor: ``.detach()
    .cpu().numpy()`` is applied) is the gradient with respect to the logits of the
    objective (``sign="ascent"``) or of a loss to minimise (``"loss"``, what
    ``loss.backward()`` leaves in ``logits.grad``), averaged over episodes
    (``reduction="episodes"``, refpg's estimators) or over valid steps (``"steps"``).
    The claim (``estimator``, ``weighting``, ``baseline``): see ``EstimatorClaim``;
    the baseline constant of ``"constant:<b>"`` is built into the user's function.

    A NumPy user function (reward-to-go, ``gamma^t`` weights, no baseline)::

        def user_estimator(logits, states, actions, rewards, mask, gamma):
            N, T = rewards.shape
            G = np.zeros_like(rewards); acc = np.zeros(N)
            for t in reversed(range(T)):               # padding rewards are 0
                acc = rewards[:, t] + gamma * acc; G[:, t] = acc
            pi = np.exp(logits - logits.max(1, keepdims=True)); pi /= pi.sum(1, keepdims=True)
            grad = np.zeros_like(logits)
            c = np.where(mask, gamma ** np.arange(T) * G, 0.0)
            np.add.at(grad, (states, actions), c)                     # c_t e_{a_t}
            np.add.at(grad, states, -c[..., None] * pi[states])       # - c_t pi(.|s_t)
            return grad / N

    The PyTorch version (inputs arrive as NumPy arrays)::

        def user_estimator(logits, states, actions, rewards, mask, gamma):
            z = torch.tensor(logits, requires_grad=True)
            r, m = torch.as_tensor(rewards), torch.as_tensor(mask)
            G, acc = torch.zeros_like(r), torch.zeros(r.shape[0], dtype=r.dtype)
            for t in reversed(range(r.shape[1])):
                acc = r[:, t] + gamma * acc; G[:, t] = acc
            w = gamma ** torch.arange(r.shape[1], dtype=r.dtype)
            logp = torch.log_softmax(z, -1)[torch.as_tensor(states), torch.as_tensor(actions)]
            loss = -(m * w * G * logp).sum() / r.shape[0]    # pseudo-loss (PL1), mean over episodes
            loss.backward()
            return z.grad                                     # verify with sign="loss"

    With PyTorch call ``torch.set_num_threads(1)`` first: on tensors this small, waking
    the intra-op threads costs more than the arithmetic (the statistical mode makes
    thousands of calls).

    Cases: seven seeded tabular MDPs (episodes ending mid-batch, ``gamma`` 0 and 1,
    one-step episodes, two episodes with a near-deterministic policy, non-square
    ``S != A``). Agreement: ``|got - ref| <= rtol |ref| + rtol max|ref|`` per case
    set, ``rtol = 1e-8``: float64 sums in another order agree to ~1e-14, float32 code
    (relative error ~1e-7) fails; pass ``rtol=1e-5`` for float32 (the report prints it
    as a departure). The first failing case is shrunk; the report also lists the
    named conventions that do reproduce the user's output, if any. Returns a
    ``VerifyReport``; never raises because of ``user_estimator``.
    derivations/verify_estimators.md#deterministic-mode
    """
    _check_user_fn(user_estimator)
    claim = EstimatorClaim(estimator, weighting, baseline, layout, sign, reduction)
    rtol = float(rtol)
    if not (0 < rtol < 1):
        raise ValueError(f"rtol must lie in (0, 1); got {rtol!r}")
    cases = _deterministic_cases(check_positive_int("seed", seed, minimum=0))
    usable = []
    for case in cases:
        try:
            _reference_for(case.inputs, claim)
            usable.append(case)
        except ValueError:            # e.g. leave_one_out needs N >= 2: never for these cases
            pass
    scale = max(float(np.max(np.abs(_reference_for(c.inputs, claim)))) for c in usable)
    atol = rtol * scale

    def evaluate(case):
        expected = _reference_for(case.inputs, claim)
        return expected, _call_user(user_estimator, case.inputs, claim)

    departures = claim.departures()
    if rtol > 1e-8:
        departures += (f"rtol = {rtol:g} > 1e-8: agreement only to that relative precision "
                       f"(e.g. float32 code)",)
    notes = ["float64 required at the default rtol = 1e-8 (float32 rounding is ~1e-7)"]
    report = run_cases("estimator", usable, evaluate, tolerance=(rtol, atol),
                       conventions=claim.describe(), departures=departures, notes=notes,
                       to_user_layout=lambda c: _user_inputs(c.inputs, claim))
    if report.passed or report.got is None:
        return report
    first = next(c for c in usable if not _agrees(evaluate(c), rtol, atol))
    out = evaluate(first)[1]
    if out.problem:
        return report
    matches = _diagnose(first.inputs, out.value, claim, rtol)
    extra = ([f"on case {first.name!r} the output matches the named estimator with "
              + "; or ".join(matches)] if matches else
             ["the output matches no other named estimator/sign/reduction either"])
    return _with_notes(report, extra)


def _agrees(pair, rtol, atol):
    expected, out = pair
    return not out.problem and compare_outputs(out.value, expected, rtol=rtol, atol=atol)[0]


def _with_notes(report, extra):
    d = dict(report.__dict__)
    d["notes"] = tuple(report.notes) + tuple(extra)
    return VerifyReport(**d)


# --------------------------------------------------------------------------- exact means
def _claim_state_values(claim, mdp, policy, theta, H):
    if claim.baseline_kind != "value":
        return None
    return evaluate_finite_horizon(mdp, policy.probs_table(theta), H).V


def exact_estimator_mean(mdp, policy, theta, horizon=None, *, estimator="reward_to_go",
                         weighting="discounted", baseline="none", n_episodes=1):
    """Exact ``E[g_hat]: (d,)`` of a named estimator on ``n_episodes`` episodes (VE3).

    Refpg's ascent, mean-over-episodes convention. By dynamic programming
    (refpg.moments.dp_moments) for REINFORCE with any baseline and for reward-to-go
    with ``"none"``, ``"constant:<b>"`` and ``"value"``; for reward-to-go with the
    batch baselines, ``f * time_indexed_gradient`` (closed form; ``f = (N-1)/N`` for
    ``"mean"``, 1 for ``"leave_one_out"``, (B2)).
    derivations/verify_estimators.md#statistical-mode
    """
    claim = EstimatorClaim(estimator, weighting, baseline)
    N = check_positive_int("n_episodes", n_episodes)
    H = mdp.horizon if horizon is None else horizon
    kind = claim.baseline_kind
    if estimator == "reward_to_go" and kind in ("mean", "leave_one_out"):
        if N < 2 and kind == "leave_one_out":
            raise ValueError("baseline='leave_one_out' needs n_episodes >= 2")
        f = (N - 1) / N if kind == "mean" else 1.0
        return f * time_indexed_gradient(mdp, policy, theta, H, weighting=weighting)
    sv = _claim_state_values(claim, mdp, policy, theta, H)
    return dp_moments(mdp, policy, theta, H, estimator=estimator, weighting=weighting,
                      baseline=claim.refpg_baseline(), state_values=sv, n_episodes=N).mean


# --------------------------------------------------------------------------- golden vectors
_GOLDEN_CLAIMS = (
    ("reinforce", "discounted", "none"), ("reinforce", "discounted", "constant:0.5"),
    ("reinforce", "discounted", "mean"), ("reinforce", "discounted", "leave_one_out"),
    ("reward_to_go", "discounted", "none"), ("reward_to_go", "discounted", "constant:0.5"),
    ("reward_to_go", "discounted", "leave_one_out"), ("reward_to_go", "discounted", "value"),
    ("reward_to_go", "uniform", "none"), ("reward_to_go", "uniform", "mean"),
    ("reward_to_go", "uniform", "value"),
)


def golden_estimator_vectors():
    """Golden vectors for the quantity ``estimator``: ``(description, layout, [vector, ...])``.

    One small tabular MDP (3 states, one terminal, 2 actions, horizon 4) and logits
    (seed 20250), a batch of 4 sampled episodes, and for each named estimator its
    value on the batch (``estimate``, E1) and its exact expectation over batches of 4
    episodes (``expected_gradient``, E3); ``gamma = 0.9`` and a ``gamma = 1`` model; one
    vector in the PyTorch convention (``sign="loss"``, ``reduction="steps"``).
    Deterministic: regenerates bit-identically. derivations/verify_estimators.md#golden-vectors
    """
    description = ("Policy-gradient estimators with respect to tabular-softmax logits "
                   "(pi(a|s) = softmax(logits[s])_a): the named estimator on a sampled batch "
                   "(estimate) and its exact expectation over batches of n_episodes episodes "
                   "drawn from the MDP (expected_gradient), both (S, A).")
    layout = ("batch-major: states, actions (N, T) int; rewards, mask, values (N, T) "
              "(values = V_t(s_t), used by baseline 'value'); padding (mask False) holds 0; "
              "logits (S, A); MDP: P (S, A, S), r (S, A), rho0 (S,), terminal (S,), horizon, "
              "gamma; outputs (S, A); ascent, mean over episodes unless the conventions say "
              "sign 'loss' (negated) or reduction 'steps' (divided by the number of valid "
              "steps instead of N)")
    out = []
    for gamma, tag in ((0.9, ""), (1.0, "_gamma1")):
        rng = np.random.default_rng(20250)
        mdp, policy, theta, inputs = _sampled_inputs(rng, 3, 2, 4, gamma, 1, 4, 1.0)
        model = {"P": np.asarray(mdp.P), "r": np.asarray(mdp.r), "rho0": np.asarray(mdp.rho0),
                 "terminal": np.asarray(mdp.terminal), "horizon": 4, "n_episodes": 4}
        claims = _GOLDEN_CLAIMS if not tag else (("reward_to_go", "discounted", "none"),
                                                 ("reward_to_go", "uniform", "leave_one_out"))
        for est, w, b in claims:
            claim = EstimatorClaim(est, w, b)
            estimate = _reference_for(inputs, claim)
            mean = exact_estimator_mean(mdp, policy, theta, 4, estimator=est, weighting=w,
                                        baseline=b, n_episodes=4)
            name = f"{est}_{w}_{b.replace(':', '_')}{tag}"
            out.append(vector(name, f"{est}, weighting {w}, baseline {b}, gamma {gamma:g}",
                              "refpg.verify.estimators.reference_estimate",
                              dict(inputs, **model),
                              {"estimate": estimate, "expected_gradient": mean.reshape(3, 2)},
                              rtol=1e-10, atol=1e-12, conventions=claim.describe()))
        if not tag:
            claim = EstimatorClaim("reward_to_go", "uniform", "value", sign="loss",
                                   reduction="steps")
            out.append(vector("reward_to_go_uniform_value_loss_steps",
                              "the PyTorch convention: gradient of -mean over valid steps of "
                              "(G_t - V_t(s_t)) log pi(a_t|s_t)",
                              "refpg.verify.estimators.reference_estimate", dict(inputs, **model),
                              {"estimate": _reference_for(inputs, claim)}, rtol=1e-10,
                              atol=1e-12, conventions=claim.describe()))
    return description, layout, out
