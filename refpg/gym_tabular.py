"""Import gymnasium's tabular environments as exact ``FiniteMDP``s (SCOPE M1).

``from_gymnasium("FrozenLake-v1", gamma=0.99)`` reads the environment's own
transition table ``env.unwrapped.P[s][a] = [(p, s', r, terminated), ...]``
(FrozenLake-v1 with any ``map_name`` / ``desc`` / ``is_slippery``,
FrozenLake8x8-v1, CliffWalking-v1, Taxi-v4; any toy-text environment with the
same table). derivations/gym_tabular.md#the-import:

    P[s, a, s'] = sum of p over the table entries of (s, a) that reach s'
                  without terminating                                          (G1)
    P[s, a, term(s')] = sum of p over the entries that reach s' terminating   (G2)
    r[s, a] = sum over the entries of (s, a) of p * reward                     (G3)
    rho0 = env.unwrapped.initial_state_distrib                                 (G4)

Gymnasium marks *transitions* as terminated, refpg marks *states*
(CONVENTIONS.md: terminal states are absorbing with zero reward). ``term(s')``
is ``s'`` itself when every positive-probability entry reaching ``s'`` is
terminated and ``rho0(s') = 0`` (gymnasium never continues from ``s'``: it is
made terminal in place), otherwise a new terminal copy of ``s'`` appended after
the environment's states (derivations/gym_tabular.md#terminal-states).
``mdp.info`` records the mapping: ``env_state[m]`` is the environment state of
MDP state ``m``; ``terminal_index[s]`` is the MDP state an episode enters when
a terminated transition reaches environment state ``s`` (``-1`` if none does).
``env_to_mdp_state`` applies it to observed transitions.

gymnasium is imported lazily, only here (and in ``refpg.collect``).
"""
from __future__ import annotations

import numbers

import numpy as np

from .mdp import FiniteMDP
from .validation import as_float_array, as_index_array

__all__ = ["from_gymnasium", "env_to_mdp_state"]


class _FromSpec:
    def __repr__(self):
        return "<env spec max_episode_steps>"


#: default ``horizon``: the environment spec's ``max_episode_steps``.
FROM_SPEC = _FromSpec()

_STATE_MEANING = {
    "FrozenLakeEnv": "row * ncol + col of the player's cell (row 0 at the top)",
    "CliffWalkingEnv": "row * 12 + col of the player's cell on the 4x12 grid (row 0 at the "
                       "top); the cliff cells 37..46 are never occupied",
    "TaxiEnv": "((taxi_row * 5 + taxi_col) * 5 + passenger_location) * 4 + destination; "
               "passenger_location 0..3 = R, G, Y, B, 4 = in the taxi",
}
_ACTION_MEANING = {
    "FrozenLakeEnv": ("left", "down", "right", "up"),
    "CliffWalkingEnv": ("up", "right", "down", "left"),
    "TaxiEnv": ("south", "north", "east", "west", "pickup", "dropoff"),
}


def _discrete_n(space, name):
    n = getattr(space, "n", None)
    start = getattr(space, "start", 0)
    if n is None or type(space).__name__ != "Discrete":
        raise ValueError(f"env {name} must be gymnasium.spaces.Discrete; got {space!r}")
    if int(start) != 0:
        raise ValueError(f"env {name} must start at 0; got Discrete(start={start})")
    return int(n)


def _read_table(table, S, A):
    """Flatten ``P[s][a]`` into arrays ``(s, a, p, s', reward, terminated)``."""
    if not isinstance(table, dict) or len(table) != S:
        raise ValueError(f"env.unwrapped.P must be a dict with one entry per state (S = {S}); "
                         f"got {type(table).__name__} of length {len(table)}")
    rows = []
    for s in range(S):
        if s not in table or not isinstance(table[s], dict) or len(table[s]) != A:
            raise ValueError(f"env.unwrapped.P[{s}] must be a dict with one entry per action "
                             f"(A = {A})")
        for a in range(A):
            entries = table[s].get(a)
            if not entries:
                raise ValueError(f"env.unwrapped.P[{s}][{a}] must be a non-empty list of "
                                 f"(p, s', r, terminated); got {entries!r}")
            for e in entries:
                if len(e) != 4:
                    raise ValueError(f"env.unwrapped.P[{s}][{a}] entries must be "
                                     f"(p, s', r, terminated); got {e!r}")
                p, s2, rew, term = e
                if not isinstance(term, (bool, np.bool_)):
                    raise ValueError(f"env.unwrapped.P[{s}][{a}]: terminated must be a bool; "
                                     f"got {term!r}")
                if not isinstance(s2, numbers.Integral) or not 0 <= int(s2) < S:
                    raise ValueError(f"env.unwrapped.P[{s}][{a}]: next state must be an "
                                     f"integer in [0, {S}); got {s2!r}")
                rows.append((s, a, float(p), int(s2), float(rew), bool(term)))
    s, a, p, s2, rew, term = (np.array(c) for c in zip(*rows))
    if not np.all(np.isfinite(p)) or np.any(p < 0) or np.any(p > 1):
        raise ValueError("env.unwrapped.P probabilities must lie in [0, 1]")
    if not np.all(np.isfinite(rew)):
        raise ValueError("env.unwrapped.P rewards must be finite")
    return s, a, p, s2, rew, term


def from_gymnasium(env, *, gamma, horizon=FROM_SPEC, name=None, **make_kwargs):
    """Exact ``FiniteMDP`` of a tabular gymnasium environment, equations (G1)-(G4).

    ``env``: an environment id (made with ``gymnasium.make(env, **make_kwargs)``
    and closed again) or an environment instance (then ``make_kwargs`` must be
    empty). ``gamma`` in [0, 1] (``1`` needs terminal states or a horizon).
    ``horizon`` defaults to the spec's ``max_episode_steps`` (``None`` when the
    spec has none, e.g. CliffWalking-v1); pass an int or ``None`` to override.
    The result has ``S = S_env + (number of terminal copies)`` states and the
    environment's ``A`` actions; ``mdp.info`` holds ``env_id``,
    ``make_kwargs``, ``n_env_states``, ``env_state: (S,)``,
    ``terminal_index: (S_env,)``, ``terminal_in_place``, ``terminal_copies``
    (MDP state -> environment state), ``states`` and ``actions`` (their
    meaning) and ``horizon_source``.

    Raises ``ValueError`` for environments whose ``step`` does not follow
    their table (Taxi with ``fickle_passenger=True`` changes the destination
    outside ``P``), without a table, or with non-``Discrete`` spaces.
    derivations/gym_tabular.md#the-import
    """
    import gymnasium  # lazy: only this module and refpg.collect import gymnasium

    made = isinstance(env, str)
    if made:
        env_obj = gymnasium.make(env, **make_kwargs)
    else:
        if make_kwargs:
            raise ValueError(f"make_kwargs {sorted(make_kwargs)} are only used with an "
                             f"environment id; got an environment instance")
        if not hasattr(env, "unwrapped"):
            raise TypeError(f"env must be a gymnasium environment id or instance; "
                            f"got {type(env).__name__}")
        env_obj = env
    try:
        u = env_obj.unwrapped
        kind = type(u).__name__
        if getattr(u, "fickle_passenger", False):
            raise ValueError("env: Taxi with fickle_passenger=True changes the destination "
                             "outside its table P (a hidden per-episode flag); it is not "
                             "the MDP of its table and cannot be imported")
        S = _discrete_n(u.observation_space, "observation_space")
        A = _discrete_n(u.action_space, "action_space")
        if not hasattr(u, "P"):
            raise ValueError(f"env {kind} has no transition table env.unwrapped.P")
        s, a, p, s2, rew, term = _read_table(u.P, S, A)
        rho_env = getattr(u, "initial_state_distrib", None)
        if rho_env is None:
            raise ValueError(f"env {kind} has no initial_state_distrib")
        rho_env = as_float_array("env.unwrapped.initial_state_distrib", rho_env, shape=(S,))
        spec = env_obj.spec
        env_id = spec.id if spec is not None else kind
        spec_steps = spec.max_episode_steps if spec is not None else None
    finally:
        if made:
            env_obj.close()

    # terminal states: in place when only terminated entries reach them and rho0 is 0
    pos = p > 0
    reached_term = np.zeros(S, dtype=bool)
    reached_live = np.zeros(S, dtype=bool)
    reached_term[s2[pos & term]] = True
    reached_live[s2[pos & ~term]] = True
    in_place = reached_term & ~reached_live & (rho_env == 0)
    copies = np.flatnonzero(reached_term & ~in_place)
    n_total = S + copies.size
    terminal_index = np.full(S, -1, dtype=np.int64)
    terminal_index[in_place] = np.flatnonzero(in_place)
    terminal_index[copies] = S + np.arange(copies.size)
    env_state = np.concatenate([np.arange(S), copies]).astype(np.int64)

    target = np.where(term, terminal_index[s2], s2)
    P = np.zeros((n_total, A, n_total))
    np.add.at(P, (s, a, target), p)
    r = np.zeros((n_total, A))
    np.add.at(r, (s, a), p * rew)
    terminal = np.zeros(n_total, dtype=bool)
    terminal[np.flatnonzero(in_place)] = True
    terminal[S:] = True
    for m in np.flatnonzero(terminal):
        P[m] = 0.0
        P[m, :, m] = 1.0
        r[m] = 0.0
    rho0 = np.zeros(n_total)
    rho0[:S] = rho_env

    if horizon is FROM_SPEC:
        horizon, horizon_source = spec_steps, "spec.max_episode_steps"
    else:
        horizon_source = "argument"
    kw = dict(make_kwargs)
    if name is None:
        args = ", ".join(f"{k}={v!r}" for k, v in sorted(kw.items()))
        name = f"{env_id}({args})" if args else env_id
    info = {
        "env_id": env_id,
        "make_kwargs": kw,
        "n_env_states": S,
        "env_state": env_state,
        "terminal_index": terminal_index,
        "terminal_in_place": np.flatnonzero(in_place),
        "terminal_copies": {int(S + k): int(e) for k, e in enumerate(copies)},
        "states": _STATE_MEANING.get(kind, "the environment's observation index")
                  + (f"; MDP states {S}..{n_total - 1} are terminal copies of environment "
                     f"states {copies.tolist()}" if copies.size else ""),
        "actions": _ACTION_MEANING.get(kind, tuple(f"action {k}" for k in range(A))),
        "horizon_source": horizon_source,
    }
    return FiniteMDP(P=P, r=r, rho0=rho0, gamma=gamma, terminal=terminal, horizon=horizon,
                     name=name, info=info)


def env_to_mdp_state(mdp, observations, terminated):
    """MDP states of observed transitions: ``observations, terminated: (*B,)`` -> ``(*B,)``.

    ``m = terminal_index[obs]`` where ``terminated`` and ``m = obs`` otherwise
    (derivations/gym_tabular.md#terminal-states). Raises ``ValueError`` for an
    outcome the imported MDP cannot produce (a terminated arrival at a state no
    terminated entry reaches, or a non-terminated arrival at a state made
    terminal in place). Start observations from ``reset`` use
    ``terminated = False``.
    """
    if not isinstance(mdp, FiniteMDP) or "terminal_index" not in mdp.info:
        raise TypeError("mdp must be a FiniteMDP made by from_gymnasium")
    terminal_index = mdp.info["terminal_index"]
    S_env = mdp.info["n_env_states"]
    obs = as_index_array("observations", observations, upper=S_env)
    term = np.asarray(terminated)
    if term.dtype != bool or term.shape != obs.shape:
        raise ValueError(f"terminated must be a bool array of shape {obs.shape}; "
                         f"got dtype {term.dtype}, shape {term.shape}")
    out = np.where(term, terminal_index[obs], obs)
    bad_term = term & (out < 0)
    if bad_term.any():
        raise ValueError(f"terminated: no terminated transition of the table reaches "
                         f"environment state {int(obs[bad_term].ravel()[0])}")
    bad_live = ~term & mdp.terminal[np.where(term, 0, obs)]
    if bad_live.any():
        raise ValueError(f"terminated: environment state {int(obs[bad_live].ravel()[0])} is "
                         f"terminal in the imported MDP but the transition is not terminated")
    return out.astype(np.int64)
