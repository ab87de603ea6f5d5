"""Hypothesis strategies for MDPs, policies and parameters (SCOPE V4).

For users' own property tests: ``@given(mdps(), ...)``. hypothesis is a *test*
extra (``pip install "refpg[test]"``); this is the only module of refpg that
imports it, and ``import refpg`` does not import this module.

What the data looks like and how it shrinks (derivations/strategies.md):

* ``mdps()``: ``P[s, a, :]`` is a softmax of drawn weights in ``[-6, 6]``
  over a drawn support (``sparsity`` drops next states, at least one is kept);
  rewards in ``[-reward_scale, reward_scale]``; ``rho0`` a softmax of weights
  in ``[-4, 4]`` over the non-terminal states; the last ``terminal`` states are
  absorbing with zero reward and every non-terminal row can reach the first of
  them, so every softmax policy is proper and ``gamma = 1`` is well posed.
  Shrinks toward ``S = A = 1``, ``gamma = 0``, dense uniform transitions,
  zero rewards and a uniform ``rho0``.
* ``policies(mdp)``: tabular, linear (feature table) and MLP (feature table)
  softmax policies over ``mdp``'s states; without ``mdp`` also the
  observation-vector kinds. Shrinks toward the tabular kind and small sizes.
* ``thetas(policy)``: ``theta`` with entries in ``[-scale, scale]``, finite,
  never NaN; shrinks toward ``0`` (the uniform policy).
* ``probability_vectors`` / ``policy_tables``: shrink toward uniform.

Argument errors raise ``hypothesis.errors.InvalidArgument`` when the strategy
is built, not when it is drawn from (hypothesis's own convention).

``hard_cases()`` is the registry of hand-picked cases that random generation
rarely hits (deterministic MDP, absorbing state, gamma = 0.99, gamma = 1,
near-deterministic softmax, logits ~ 1e3, a single action); ``named_cases()``
draws from it.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
from hypothesis import strategies as st
from hypothesis.errors import InvalidArgument
from hypothesis.extra import numpy as hnp

from .mdp import FiniteMDP
from .policies import LinearSoftmaxPolicy, MLPSoftmaxPolicy, SoftmaxPolicy, TabularSoftmaxPolicy

__all__ = ["mdps", "policies", "thetas", "policy_and_theta", "probability_vectors",
           "policy_tables", "Case", "hard_cases", "named_cases", "TABULAR_KINDS",
           "OBSERVATION_KINDS"]

#: policy kinds whose observations are state indices (usable with refpg.policy_gradient).
TABULAR_KINDS = ("tabular", "linear", "mlp")
#: policy kinds on observation vectors (``obs: (*B, obs_dim)``).
OBSERVATION_KINDS = ("linear_obs", "mlp_obs")

_P_LOGIT = 6.0      # transition weights in [-6, 6]: entries differ by at most e^12
_RHO_LOGIT = 4.0


# --------------------------------------------------------------------------- validation
def _is_strategy(x):
    return isinstance(x, st.SearchStrategy)


def _int_arg(name, value, minimum):
    if _is_strategy(value):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise InvalidArgument(f"{name} must be an int or a strategy of ints; got {value!r}")
    if value < minimum:
        raise InvalidArgument(f"{name} must be >= {minimum}; got {value}")
    return st.just(int(value))


def _float_arg(name, value, lo, hi, *, hi_open=False):
    if _is_strategy(value):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise InvalidArgument(f"{name} must be a real number or a strategy; got {value!r}")
    value = float(value)
    ok = lo <= value < hi if hi_open else lo <= value <= hi
    if not ok:
        raise InvalidArgument(f"{name} must lie in [{lo}, {hi}{')' if hi_open else ']'}; "
                              f"got {value!r}")
    return st.just(value)


def _optional_int_arg(name, value, minimum):
    if value is None:
        return st.none()
    return _int_arg(name, value, minimum)


def _scale_arg(name, value):
    if _is_strategy(value):
        return value
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or \
            not (math.isfinite(value) and value > 0):
        raise InvalidArgument(f"{name} must be a positive finite number or a strategy; "
                              f"got {value!r}")
    return st.just(float(value))


def _drawn(name, value, rule, ok):
    if not ok:
        raise InvalidArgument(f"{name} drew {value!r}, which violates: {rule}")
    return value


def _weights_to_probs(w, keep=None):
    """Softmax of ``w`` along the last axis over the entries where ``keep``."""
    w = w - np.max(w, axis=-1, keepdims=True)
    e = np.exp(w)
    if keep is not None:
        e = np.where(keep, e, 0.0)
    return e / np.sum(e, axis=-1, keepdims=True)


# --------------------------------------------------------------------------- MDPs
def mdps(*, n_states=st.integers(1, 5), n_actions=st.integers(1, 4),
         gamma=st.floats(0.0, 0.99), horizon=None, sparsity=st.floats(0.0, 0.9),
         terminal=0, reward_scale=1.0):
    """Strategy of valid ``FiniteMDP`` s (SCOPE M1); every argument an int/float or a strategy.

    ``n_states >= 1``, ``n_actions >= 1``; ``gamma`` in ``[0, 1]`` (``1`` needs a
    ``horizon`` or ``terminal >= 1``); ``horizon``: None, an int ``>= 1`` or a
    strategy of either; ``sparsity`` in ``[0, 1)``: each next state is dropped
    from the support of ``P[s, a, :]`` when its drawn ``u`` in ``[0, 1)``
    exceeds ``1 - sparsity`` (at least one is kept); ``terminal``: the number
    of terminal states, capped at ``n_states - 1``; ``reward_scale >= 0``.
    Shrinks toward one state, one action, ``gamma = 0``, dense uniform ``P``.
    derivations/strategies.md#mdps
    """
    n_states = _int_arg("n_states", n_states, 1)
    n_actions = _int_arg("n_actions", n_actions, 1)
    gamma_s = _float_arg("gamma", gamma, 0.0, 1.0)
    horizon_s = _optional_int_arg("horizon", horizon, 1)
    sparsity = _float_arg("sparsity", sparsity, 0.0, 1.0, hi_open=True)
    terminal_s = _int_arg("terminal", terminal, 0)
    if isinstance(reward_scale, bool) or not isinstance(reward_scale, numbers.Real) or \
            not (math.isfinite(reward_scale) and reward_scale >= 0):
        raise InvalidArgument(f"reward_scale must be a finite number >= 0; got {reward_scale!r}")
    reward_scale = float(reward_scale)
    if (not _is_strategy(gamma) and float(gamma) == 1.0 and horizon is None
            and not _is_strategy(terminal) and terminal == 0):
        raise InvalidArgument("gamma = 1 needs a horizon or terminal >= 1 (an episodic MDP); "
                              "got neither")
    return _mdps(n_states, n_actions, gamma_s, horizon_s, sparsity, terminal_s, reward_scale)


@st.composite
def _mdps(draw, n_states, n_actions, gamma, horizon, sparsity, terminal, reward_scale):
    S = draw(n_states)
    _drawn("n_states", S, "an int >= 1", isinstance(S, numbers.Integral) and S >= 1)
    A = draw(n_actions)
    _drawn("n_actions", A, "an int >= 1", isinstance(A, numbers.Integral) and A >= 1)
    g = float(draw(gamma))
    _drawn("gamma", g, "a float in [0, 1]", 0.0 <= g <= 1.0)
    H = draw(horizon)
    _drawn("horizon", H, "None or an int >= 1",
           H is None or (isinstance(H, numbers.Integral) and H >= 1))
    sp = float(draw(sparsity))
    _drawn("sparsity", sp, "a float in [0, 1)", 0.0 <= sp < 1.0)
    n_term = draw(terminal)
    _drawn("terminal", n_term, "an int >= 0", isinstance(n_term, numbers.Integral) and n_term >= 0)
    n_term = min(int(n_term), S - 1)
    if g == 1.0 and H is None and n_term == 0:
        raise InvalidArgument("gamma drew 1.0 with no horizon and no terminal state (an "
                              "undiscounted infinite-horizon MDP has no finite return)")
    S, A = int(S), int(A)
    floats = dict(allow_nan=False, allow_infinity=False)
    w = draw(hnp.arrays(np.float64, (S, A, S), fill=st.nothing(),
                        elements=st.floats(-_P_LOGIT, _P_LOGIT, **floats)))
    u = draw(hnp.arrays(np.float64, (S, A, S), fill=st.nothing(),
                        elements=st.floats(0.0, 1.0, exclude_max=True, **floats)))
    keep = u <= 1.0 - sp
    first = np.argmin(u, axis=-1)
    none_kept = ~keep.any(axis=-1)
    keep[none_kept, first[none_kept]] = True
    terminal_mask = np.zeros(S, dtype=bool)
    if n_term:
        terminal_mask[S - n_term:] = True
        keep[~terminal_mask, :, S - n_term] = True   # every policy is proper
    P = _weights_to_probs(w, keep)
    r = draw(hnp.arrays(np.float64, (S, A), fill=st.nothing(),
                        elements=st.floats(-reward_scale, reward_scale, **floats)))
    for s in np.flatnonzero(terminal_mask):
        P[s] = 0.0
        P[s, :, s] = 1.0
        r[s] = 0.0
    wr = draw(hnp.arrays(np.float64, (S - n_term,), fill=st.nothing(),
                         elements=st.floats(-_RHO_LOGIT, _RHO_LOGIT, **floats)))
    rho0 = np.zeros(S)
    rho0[~terminal_mask] = _weights_to_probs(wr)
    return FiniteMDP(P=P, r=r, rho0=rho0, gamma=g, terminal=terminal_mask, horizon=H,
                     name=f"hypothesis(S={S}, A={A}, gamma={g:g}, sparsity={sp:g}, "
                          f"terminal={n_term})")


# --------------------------------------------------------------------------- policies
def _check_kinds(kinds, mdp):
    allowed = TABULAR_KINDS if mdp is not None else TABULAR_KINDS + OBSERVATION_KINDS
    if kinds is None:
        return allowed
    if isinstance(kinds, str):
        kinds = (kinds,)
    kinds = tuple(kinds)
    if not kinds:
        raise InvalidArgument("kinds must name at least one policy kind")
    bad = [k for k in kinds if k not in TABULAR_KINDS + OBSERVATION_KINDS]
    if bad:
        raise InvalidArgument(f"unknown policy kind(s) {bad}; choose from "
                              f"{TABULAR_KINDS + OBSERVATION_KINDS}")
    if mdp is not None:
        obs_kinds = [k for k in kinds if k in OBSERVATION_KINDS]
        if obs_kinds:
            raise InvalidArgument(f"kinds {obs_kinds} take observation vectors, not the states "
                                  f"of mdp; with an mdp choose from {TABULAR_KINDS}")
    return kinds


def policies(mdp=None, *, kinds=None):
    """Strategy of softmax policies (SCOPE P1, P2, P4).

    ``mdp``: a ``FiniteMDP`` (policies over its states and actions, tabular-capable
    kinds only) or None (``S``, ``A`` in 1..4 drawn, all kinds). ``kinds``: a
    subset of ``TABULAR_KINDS + OBSERVATION_KINDS`` (default: all allowed).
    Feature tables have entries in ``[-2, 2]``, ``k`` in 1..6, MLP widths in
    1..4 with one or two hidden layers. Shrinks toward the first kind listed
    and the smallest sizes. derivations/strategies.md#policies
    """
    if mdp is not None and not isinstance(mdp, FiniteMDP):
        raise InvalidArgument(f"mdp must be a FiniteMDP or None; got {type(mdp).__name__}")
    kinds = _check_kinds(kinds, mdp)
    return _policies(mdp, kinds)


@st.composite
def _policies(draw, mdp, kinds):
    kind = draw(st.sampled_from(kinds))
    if mdp is None:
        S, A = draw(st.integers(1, 4)), draw(st.integers(1, 4))
    else:
        S, A = mdp.n_states, mdp.n_actions
    floats = st.floats(-2.0, 2.0, allow_nan=False, allow_infinity=False)
    hidden = st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple)
    if kind == "tabular":
        return TabularSoftmaxPolicy(S, A)
    if kind == "linear":
        k = draw(st.integers(1, 6))
        phi = draw(hnp.arrays(np.float64, (S, A, k), elements=floats, fill=st.nothing()))
        return LinearSoftmaxPolicy(phi)
    if kind == "mlp":
        m = draw(st.integers(1, 3))
        phi = draw(hnp.arrays(np.float64, (S, m), elements=floats, fill=st.nothing()))
        return MLPSoftmaxPolicy(m, A, draw(hidden), features=phi)
    if kind == "linear_obs":
        return LinearSoftmaxPolicy.for_observations(draw(st.integers(1, 4)), A,
                                                    bias=draw(st.booleans()))
    if kind == "mlp_obs":
        return MLPSoftmaxPolicy(draw(st.integers(1, 4)), A, draw(hidden))
    raise AssertionError(f"unreachable: kind {kind!r}")  # _check_kinds rejected it


def thetas(policy, *, scale=3.0):
    """Strategy of parameter vectors ``theta: (d,)`` for ``policy``, entries in ``[-scale, scale]``.

    ``scale``: a positive finite float or a strategy of them (drawn first).
    Finite, never NaN; each entry drawn separately (no repeated fill value);
    shrinks toward ``theta = 0``. derivations/strategies.md#parameters
    """
    if not hasattr(policy, "n_params"):
        raise InvalidArgument(f"policy must be a refpg policy; got {type(policy).__name__}")
    return _thetas(policy.n_params, _scale_arg("scale", scale))


@st.composite
def _thetas(draw, d, scale):
    s = float(draw(scale))
    _drawn("scale", s, "a positive finite float", math.isfinite(s) and s > 0)
    return draw(hnp.arrays(np.float64, (d,), fill=st.nothing(),
                           elements=st.floats(-s, s, allow_nan=False, allow_infinity=False)))


def policy_and_theta(mdp=None, *, kinds=None, scale=3.0):
    """Strategy of pairs ``(policy, theta)``: ``policies(mdp, kinds=kinds)`` then ``thetas``.

    derivations/strategies.md#parameters
    """
    pol = policies(mdp, kinds=kinds)
    scale_s = _scale_arg("scale", scale)
    return pol.flatmap(lambda p: st.tuples(st.just(p), _thetas(p.n_params, scale_s)))


# --------------------------------------------------------------------------- probabilities
def probability_vectors(size, *, min_prob=0.0):
    """Strategy of probability vectors ``p: (size,)``, ``p_i >= min_prob``, ``sum p = 1``.

    ``p = min_prob + (1 - size min_prob) w / sum w`` with ``w_i`` in ``[0, 1]``
    (uniform when all ``w_i = 0``); exact zeros occur when ``min_prob = 0``.
    Shrinks toward the uniform vector. derivations/strategies.md#probability-vectors
    """
    size_s = _int_arg("size", size, 1)
    mp = _float_arg("min_prob", min_prob, 0.0, 1.0)
    if not _is_strategy(size) and not _is_strategy(min_prob) and min_prob * size > 1.0:
        raise InvalidArgument(f"min_prob * size must be <= 1; got {min_prob} * {size}")
    return _probability_rows(size_s.map(lambda n: (n,)), mp)


@st.composite
def _probability_rows(draw, shape, min_prob):
    shape = tuple(draw(shape))
    mp = float(draw(min_prob))
    n = shape[-1]
    _drawn("min_prob", mp, f"min_prob * size <= 1 with size = {n}", 0.0 <= mp * n <= 1.0)
    w = draw(hnp.arrays(np.float64, shape, fill=st.nothing(),
                        elements=st.floats(0.0, 1.0, allow_nan=False)))
    tot = np.sum(w, axis=-1, keepdims=True)
    p = np.where(tot > 0, w / np.where(tot > 0, tot, 1.0), 1.0 / n)
    return mp + (1.0 - n * mp) * p


def policy_tables(mdp, *, min_prob=0.0):
    """Strategy of policy tables ``pi: (S, A)`` for ``mdp``, rows as in ``probability_vectors``.

    With terminal states and ``gamma = 1`` use ``min_prob > 0``: then every
    action has positive probability and (for ``mdps()``) the policy is proper.
    derivations/strategies.md#probability-vectors
    """
    if not isinstance(mdp, FiniteMDP):
        raise InvalidArgument(f"mdp must be a FiniteMDP; got {type(mdp).__name__}")
    mp = _float_arg("min_prob", min_prob, 0.0, 1.0)
    if not _is_strategy(min_prob) and min_prob * mdp.n_actions > 1.0:
        raise InvalidArgument(f"min_prob * n_actions must be <= 1; got "
                              f"{min_prob} * {mdp.n_actions}")
    return _probability_rows(st.just((mdp.n_states, mdp.n_actions)), mp)


# --------------------------------------------------------------------------- hard cases
@dataclass(frozen=True, eq=False)
class Case:
    """A named hand-picked case: ``mdp``, a tabular-capable ``policy`` and its ``theta: (d,)``.

    derivations/strategies.md#hard-cases
    """

    name: str
    description: str
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray


def _chain(n, gamma, **kw):
    """Deterministic chain: action 0 moves right, the last action stays (if A > 1)."""
    S = n
    P = np.zeros((S, 2, S))
    for s in range(S):
        P[s, 0, min(s + 1, S - 1)] = 1.0
        P[s, 1, s] = 1.0
    r = np.zeros((S, 2))
    r[S - 1, :] = 1.0
    r[0, 1] = 0.2
    rho0 = np.zeros(S)
    rho0[0] = 1.0
    return FiniteMDP(P=P, r=r, rho0=rho0, gamma=gamma, **kw)


def hard_cases():
    """The registry ``{name: Case}`` of hand-picked hard cases, built deterministically.

    * ``deterministic-mdp``: every ``P[s, a, :]`` is one-hot (a chain), gamma 0.9;
    * ``absorbing-state``: a terminal absorbing state reached from everywhere, gamma 0.95;
    * ``gamma-0.99``: a dense random MDP with ``gamma = 0.99`` (``1/(1-gamma) = 100``);
    * ``episodic-gamma-1``: ``gamma = 1`` with a terminal state (proper softmax policies);
    * ``finite-horizon-gamma-1``: ``gamma = 1``, horizon 6, no terminal state;
    * ``near-deterministic-softmax``: logits of size ~30 (probabilities ~1e-13);
    * ``logits-1e3``: logits of magnitude 1e3 (probabilities underflow to 0);
    * ``single-action``: ``A = 1``, so every score and gradient is exactly 0;
    * ``linear-features`` and ``mlp-features``: the non-tabular tabular-capable policies.

    derivations/strategies.md#hard-cases
    """
    rng = np.random.default_rng(20240601)
    out = {}

    def add(name, description, mdp, policy, theta):
        theta = np.asarray(theta, dtype=float)
        theta.flags.writeable = False
        out[name] = Case(name, description, mdp, policy, theta)

    m = _chain(4, 0.9, name="deterministic chain")
    add("deterministic-mdp", "one-hot transitions (a 4-state chain), gamma 0.9", m,
        TabularSoftmaxPolicy.for_mdp(m), rng.normal(size=8))

    S, A = 4, 3
    P = rng.dirichlet(np.ones(S), size=(S, A))
    P[:S - 1, :, S - 1] += 0.2
    P /= P.sum(axis=-1, keepdims=True)
    P[S - 1] = 0.0
    P[S - 1, :, S - 1] = 1.0
    r = rng.normal(size=(S, A))
    r[S - 1] = 0.0
    term = np.array([False, False, False, True])
    rho0 = np.array([0.5, 0.3, 0.2, 0.0])
    m = FiniteMDP(P=P, r=r, rho0=rho0, gamma=0.95, terminal=term, name="absorbing state")
    add("absorbing-state", "a terminal absorbing zero-reward state, gamma 0.95", m,
        TabularSoftmaxPolicy.for_mdp(m), rng.normal(size=S * A))

    m1 = m.replace(gamma=1.0, name="episodic, gamma = 1")
    add("episodic-gamma-1", "gamma = 1 with a terminal state; softmax policies are proper",
        m1, TabularSoftmaxPolicy.for_mdp(m1), rng.normal(size=S * A))

    S, A = 5, 2
    m = FiniteMDP(P=rng.dirichlet(np.ones(S), size=(S, A)), r=rng.normal(size=(S, A)),
                  rho0=np.full(S, 1 / S), gamma=0.99, name="gamma 0.99")
    pol = MLPSoftmaxPolicy(2, A, (3,), features=rng.normal(size=(S, 2)))
    add("gamma-0.99", "dense random MDP, gamma 0.99 (effective horizon 100)", m,
        pol, rng.normal(size=pol.n_params))

    m = FiniteMDP(P=rng.dirichlet(np.ones(S), size=(S, A)), r=rng.normal(size=(S, A)),
                  rho0=np.full(S, 1 / S), gamma=1.0, horizon=6, name="finite horizon, gamma 1")
    add("finite-horizon-gamma-1", "gamma = 1 with horizon 6 and no terminal state", m,
        TabularSoftmaxPolicy.for_mdp(m), rng.normal(size=S * A))

    S, A = 3, 3
    m = FiniteMDP(P=rng.dirichlet(np.ones(S), size=(S, A)), r=rng.normal(size=(S, A)),
                  rho0=np.full(S, 1 / S), gamma=0.9, name="random 3x3")
    add("near-deterministic-softmax", "logits ~ 30: non-greedy probabilities ~ 1e-13", m,
        TabularSoftmaxPolicy.for_mdp(m), 30.0 * np.sign(rng.normal(size=S * A)) +
        rng.normal(size=S * A))
    add("logits-1e3", "logits of magnitude 1e3: probabilities underflow to exactly 0", m,
        TabularSoftmaxPolicy.for_mdp(m), 1e3 * rng.normal(size=S * A))
    add("linear-features", "linear softmax over a random feature table (S, A, k = 4)", m,
        LinearSoftmaxPolicy(rng.normal(size=(S, A, 4))), rng.normal(size=4))
    pol = MLPSoftmaxPolicy(2, A, (4, 3), features=rng.normal(size=(S, 2)))
    add("mlp-features", "tanh MLP (hidden (4, 3)) over a random feature table (S, 2)", m,
        pol, rng.normal(size=pol.n_params))

    m = FiniteMDP(P=rng.dirichlet(np.ones(S), size=(S, 1)), r=rng.normal(size=(S, 1)),
                  rho0=np.full(S, 1 / S), gamma=0.9, name="single action")
    add("single-action", "A = 1: log pi = 0, every score and gradient is exactly 0", m,
        TabularSoftmaxPolicy.for_mdp(m), rng.normal(size=S))
    return out


def named_cases():
    """Strategy drawing from ``hard_cases()`` (shrinks toward the first, ``deterministic-mdp``).

    derivations/strategies.md#hard-cases
    """
    return st.sampled_from(list(hard_cases().values()))
