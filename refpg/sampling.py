"""Rolling out policies on finite MDPs into a ``Batch`` (issue 3, item 1).

``sample_from_table(mdp, pi, n_episodes, rng, horizon=H)`` draws ``N``
independent episodes of at most ``H`` steps:

    s_0 ~ rho0 (or given start states),  (a_t, s_{t+1}) ~ pi(a|s_t) P(s'|s_t, a)   (S1)

stopping an episode when ``s_{t+1}`` is terminal (``terminated``) or when
``t = H - 1`` (``truncated``, exactly gymnasium's TimeLimit semantics).

How it is fast (derivations/sampling.md#the-joint-table and
#walker-alias-tables): the pair ``(a_t, s_{t+1})`` is drawn in one go from the
per-state joint table ``pi(a|s) P(s'|s, a)`` (S2), each row of which is turned
once into a Walker/Vose alias table (S3). One uniform ``u`` per transition
gives both the column ``k = floor(K u)`` and the coin ``K u - k`` (S4). The
inner loop over time is a handful of NumPy operations over the episodes still
alive; it records one integer per step (the *transition id*, a flat index into
the alias table) and rewards, log-probabilities, actions and states are read
from per-id tables afterwards by fancy indexing.
derivations/sampling.md#sampling-episodes
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batch import Batch
from .evaluation import check_policy_table
from .policies.base import SoftmaxPolicy
from .validation import (as_float_array, as_index_array, check_positive_int,
                         check_probabilities, check_rng)

__all__ = ["AliasTable", "alias_table", "joint_table", "sample_from_table", "sample_batch"]

#: Episodes are rolled out in chunks of this many rows so that the per-step
#: temporaries stay in cache. It fixes the order in which ``rng`` is consumed,
#: hence the sample for a seed: do not change it casually.
_CHUNK = 16384


@dataclass(frozen=True, eq=False)
class AliasTable:
    """Walker/Vose alias tables for ``R`` discrete distributions over ``M`` outcomes.

    Row ``i`` has ``K`` equiprobable columns; column ``k`` returns outcome
    ``support[i, k]`` with probability ``threshold[i, k]`` and outcome
    ``support[i, alias[i, k]]`` otherwise, so that (S3)

        p_i(x) = (1/K) sum_k [ threshold[i,k] 1{support[i,k] = x}
                              + (1 - threshold[i,k]) 1{support[i,alias[i,k]] = x} ].

    Fields: ``support: (R, K)`` int64 outcome indices in ``range(M)`` (the
    outcomes of positive probability first, padded with zero-probability
    columns), ``threshold: (R, K)`` float64 in ``[0, 1]``, ``alias: (R, K)``
    int64 column indices in ``range(K)``, ``n_outcomes = M``.
    derivations/sampling.md#walker-alias-tables
    """

    support: np.ndarray
    threshold: np.ndarray
    alias: np.ndarray
    n_outcomes: int

    @property
    def n_columns(self) -> int:
        """``K``, the columns per row (the largest support size)."""
        return self.support.shape[1]

    def distribution(self):
        """The law (S3) the table samples from, by enumerating its columns: ``(R, M)``.

        derivations/sampling.md#walker-alias-tables
        """
        R, K = self.support.shape
        out = np.zeros((R, self.n_outcomes))
        rows = np.broadcast_to(np.arange(R)[:, None], (R, K))
        np.add.at(out, (rows, self.support), self.threshold / K)
        np.add.at(out, (rows, np.take_along_axis(self.support, self.alias, axis=1)),
                  (1.0 - self.threshold) / K)
        return out

    def sample(self, rows, rng):
        """One outcome per entry of ``rows: (n,)`` (row indices), one uniform each: ``(n,)``.

        (S4): ``x = K u``, ``k = floor(x)``, outcome ``support[k]`` if
        ``x - k < threshold[k]`` else ``support[alias[k]]``.
        derivations/sampling.md#one-uniform-per-transition
        """
        check_rng(rng)
        rows = as_index_array("rows", rows, upper=self.support.shape[0])
        K = self.n_columns
        x = rng.random(rows.shape) * K
        k = x.astype(np.int64)
        keep = (x - k) < self.threshold[rows, k]
        col = np.where(keep, k, self.alias[rows, k])
        return self.support[rows, col]


def alias_table(probs):
    """Alias tables (S3) of the rows of ``probs: (R, M)`` by Vose's sweep, vectorised over rows.

    Each row is normalised to weights ``w = K p / sum(p)`` over its ``K``
    columns (``K`` = the largest number of positive entries in a row). Columns
    with ``w < 1`` ("light") take their own weight as threshold and a "heavy"
    column (``w >= 1``) as alias; the heavy donates ``1 - w`` and, once its
    remaining weight drops below 1, is itself completed by the next heavy.
    Every column is settled exactly once, so the loop runs at most ``K`` times.
    Reconstruction error (checked in tests by enumeration): ``<= K * 2^-52``.
    Returns an ``AliasTable``. derivations/sampling.md#walker-alias-tables
    """
    p = as_float_array("probs", probs, ndim=2)
    if p.shape[0] == 0 or p.shape[1] == 0:
        raise ValueError(f"probs must have at least one row and one column; got {p.shape}")
    check_probabilities("probs rows", p, axis=1)
    R, M = p.shape
    positive = p > 0
    counts = positive.sum(axis=1)
    K = int(counts.max())
    support = np.argsort(~positive, axis=1, kind="stable")[:, :K].astype(np.int64)
    w = np.take_along_axis(p, support, axis=1)
    w[np.arange(K)[None, :] >= counts[:, None]] = 0.0
    w = w * (K / w.sum(axis=1, keepdims=True))
    threshold = np.ones((R, K))
    alias = np.broadcast_to(np.arange(K, dtype=np.int64), (R, K)).copy()
    light = w < 1.0
    light[np.arange(R), np.argmax(w, axis=1)] = False  # at least one heavy per row
    order = np.argsort(~light, axis=1, kind="stable")  # lights first, then heavies
    n_light = light.sum(axis=1)
    rows = np.arange(R)
    i = np.zeros(R, np.int64)            # next light, position in `order`
    j = n_light.copy()                   # current heavy, position in `order`
    h = order[rows, j]                   # current heavy column
    rem = w[rows, h].copy()              # its remaining weight
    active = np.ones(R, bool)
    for _ in range(K + 1):
        if not active.any():
            break
        fill = active & (rem >= 1.0) & (i < n_light)
        turn = active & ~fill & (rem < 1.0) & (j + 1 < K)
        r = rows[fill]
        if r.size:
            light_col = order[r, i[fill]]
            threshold[r, light_col] = w[r, light_col]
            alias[r, light_col] = h[fill]
            rem[fill] -= 1.0 - w[r, light_col]
            i[fill] += 1
        r = rows[turn]
        if r.size:
            nxt = order[r, j[turn] + 1]
            threshold[r, h[turn]] = rem[turn]
            alias[r, h[turn]] = nxt
            rem[turn] = w[r, nxt] - (1.0 - rem[turn])
            h[turn] = nxt
            j[turn] += 1
        # rows that can neither fill nor turn are finished: the remaining columns
        # have weight 1 up to rounding and keep threshold 1 (their own outcome).
        active &= fill | turn
    np.clip(threshold, 0.0, 1.0, out=threshold)
    for arr in (support, threshold, alias):
        arr.flags.writeable = False
    return AliasTable(support=support, threshold=threshold, alias=alias, n_outcomes=M)


def joint_table(mdp, pi):
    """The per-state joint law of ``(a, s')`` (S2): ``(S, A*S)``, column ``a*S + s'``.

    ``joint[s, a*S + s'] = pi(a|s) P(s'|s, a)``; each row sums to one.
    ``pi: (S, A)`` real policy table. derivations/sampling.md#the-joint-table
    """
    pi = check_policy_table(mdp, pi)
    if np.iscomplexobj(pi):
        raise TypeError("pi must be real to sample from it")
    S, A = mdp.n_states, mdp.n_actions
    return (pi[:, :, None] * mdp.P).reshape(S, A * S)


def _transition_tables(mdp, pi, with_conditional):
    """Flat per-slot tables; see derivations/sampling.md#transition-ids.

    Slots ``s*K + k`` hold column ``k`` of state ``s``'s joint alias table; the
    slots of the "dead" row ``S*K .. S*K + K - 1`` and of terminal states always
    return the dead id ``S*K`` (padding). With ``with_conditional`` the slots
    from ``(S+1)*K`` on hold the tables of ``P(. | s, a)`` (a forced first action).
    A transition id is the slot that was drawn: ``s, a, s2, term, next_row`` are
    read from it.
    """
    S, A = mdp.n_states, mdp.n_actions
    joint = alias_table(joint_table(mdp, pi))
    K = joint.n_columns
    dead = S * K
    parts = [dict(s=np.repeat(np.arange(S, dtype=np.int64), K),
                  code=joint.support.ravel(),
                  thr=(np.arange(K)[None, :] + joint.threshold).ravel(),
                  alt=(np.arange(S, dtype=np.int64)[:, None] * K + joint.alias).ravel()),
             dict(s=np.zeros(K, np.int64), code=np.zeros(K, np.int64),
                  thr=np.full(K, -1.0), alt=np.full(K, dead, np.int64))]
    tb = dict(columns=K, dead=dead)
    if with_conditional:
        cond = alias_table(mdp.P.reshape(S * A, S))
        K2 = cond.n_columns
        offset = (S + 1) * K
        sa = np.repeat(np.arange(S * A, dtype=np.int64), K2)
        parts.append(dict(s=sa // A, code=(sa % A) * S + cond.support.ravel(),
                          thr=(np.arange(K2)[None, :] + cond.threshold).ravel(),
                          alt=offset + (np.arange(S * A, dtype=np.int64)[:, None] * K2
                                        + cond.alias).ravel()))
        tb.update(cond_offset=offset, cond_columns=K2)
    for key in ("s", "code", "thr", "alt"):
        tb[key] = np.concatenate([p[key] for p in parts])
    for s in np.flatnonzero(mdp.terminal):       # never stepped from: padding
        tb["thr"][s * K:(s + 1) * K] = -1.0
        tb["alt"][s * K:(s + 1) * K] = dead
    tb["a"] = tb["code"] // S
    tb["s2"] = tb["code"] % S
    is_dead = np.zeros(tb["s"].size, bool)
    is_dead[dead:dead + K] = True
    tb["term"] = mdp.terminal[tb["s2"]] & ~is_dead
    tb["next_row"] = np.where(tb["term"] | is_dead, dead, tb["s2"] * K)
    tb["r"] = np.where(is_dead, 0.0, mdp.r[tb["s"], tb["a"]])
    with np.errstate(divide="ignore"):
        tb["logp"] = np.where(is_dead, 0.0, np.log(pi)[tb["s"], tb["a"]])
    return tb


def _roll(tb, row0, H, rng, out):
    """Fill ``out: (H, n)`` with transition ids, starting from flat rows ``row0: (n,)``.

    The per-step loop (S4) over the episodes still alive; dead episodes are
    compacted away once they are at least half of the working set.
    """
    K, dead = tb["columns"], tb["dead"]   # next_row is `dead` once an episode has ended
    thr, alt, next_row = tb["thr"], tb["alt"], tb["next_row"]
    n = row0.size
    row = row0
    ep = None                                   # None: the working set is all of out's columns
    x = np.empty(n)
    k = np.empty(n, np.int64)
    idx = np.empty(n, np.int64)
    keep = np.empty(n, bool)
    tid = np.empty(n, np.int64)
    for t in range(H):
        m = row.size
        xs, ks, ids, kp, ts = x[:m], k[:m], idx[:m], keep[:m], tid[:m]
        rng.random(out=xs)
        np.multiply(xs, K, out=xs)
        np.copyto(ks, xs, casting="unsafe")    # floor: xs >= 0
        np.add(row, ks, out=ids)
        np.less(xs, thr.take(ids), out=kp)
        alt.take(ids, out=ts)
        np.copyto(ts, ids, where=kp)
        if ep is None:
            out[t] = ts
        else:
            out[t, ep] = ts
        row = next_row.take(ts)
        alive = row != dead
        n_alive = int(np.count_nonzero(alive))
        if n_alive == 0:
            return
        if 2 * n_alive <= m:
            live = np.flatnonzero(alive)
            row = row[live]
            ep = live if ep is None else ep[live]


def sample_from_table(mdp, pi, n_episodes, rng, *, horizon=None, start_states=None,
                      first_actions=None):
    """``N`` episodes under the policy table ``pi: (S, A)``; returns a ``Batch`` ``(N, H)``.

    Draws (S1) with the joint alias tables (S2)-(S4): ``s_0 ~ rho0`` (one
    alias draw), then per step one uniform gives ``(a_t, s_{t+1})``. The step
    that enters a terminal state is ``terminated``; a step ``t = H - 1`` that
    does not is ``truncated``. Episodes that start in a terminal state have no
    step (a row of padding). ``start_states: (N,)`` replaces ``s_0 ~ rho0``
    (vine rollouts reset to a state); ``first_actions: (N,)`` forces ``a_0``
    (then ``s_1 ~ P(. | s_0, a_0)``; its ``log_prob`` is still
    ``log pi(a_0 | s_0)``, which must be finite). ``horizon`` defaults to
    ``mdp.horizon``. Rewards are ``r(s_t, a_t)``, the MDP's expected rewards.
    The same ``rng`` state gives a bit-identical batch.
    derivations/sampling.md#sampling-episodes
    """
    check_rng(rng)
    pi = check_policy_table(mdp, pi)
    if np.iscomplexobj(pi):
        raise TypeError("pi must be real to sample from it")
    N = check_positive_int("n_episodes", n_episodes)
    H = mdp.horizon if horizon is None else horizon
    if H is None:
        raise ValueError("horizon must be given (mdp.horizon is None)")
    H = check_positive_int("horizon", H)
    S, A = mdp.n_states, mdp.n_actions
    if start_states is not None:
        start_states = as_index_array("start_states", start_states, upper=S, shape=(N,))
    if first_actions is not None:
        first_actions = as_index_array("first_actions", first_actions, upper=A, shape=(N,))
    tb = _transition_tables(mdp, pi, first_actions is not None)
    K = tb["columns"]
    if start_states is None:
        s0 = alias_table(mdp.rho0[None, :]).sample(np.zeros(N, np.int64), rng)
    else:
        s0 = start_states
    if first_actions is not None:
        bad = (pi[s0, first_actions] <= 0) & ~mdp.terminal[s0]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"first_actions[{i}] = {int(first_actions[i])} has probability 0 "
                             f"under pi in the start state {int(s0[i])}: its log-probability "
                             f"would be -inf")
    ids = np.full((H, N), tb["dead"], np.int64)          # time-major while rolling
    dead = tb["dead"]
    for c0 in range(0, N, _CHUNK):
        c1 = min(N, c0 + _CHUNK)
        s = s0[c0:c1]
        if first_actions is None:
            _roll(tb, np.where(mdp.terminal[s], dead, s * K), H, rng, ids[:, c0:c1])
            continue
        # first step from the conditional tables P(. | s, a_0), then the joint tables
        K2 = tb["cond_columns"]
        slot0 = tb["cond_offset"] + (s * A + first_actions[c0:c1]) * K2
        x = rng.random(c1 - c0) * K2
        slot = slot0 + x.astype(np.int64)
        first = np.where(x < tb["thr"][slot], slot, tb["alt"][slot])   # (S4)
        first = np.where(mdp.terminal[s], dead, first)
        ids[0, c0:c1] = first
        row1 = tb["next_row"][first]
        sub = np.flatnonzero(row1 != dead)
        if H > 1 and sub.size:
            buf = np.full((H - 1, sub.size), dead, np.int64)
            _roll(tb, row1[sub], H - 1, rng, buf)
            ids[1:, c0 + sub] = buf
    return _assemble(mdp, tb, np.ascontiguousarray(ids.T), H)


def _assemble(mdp, tb, ids, H):
    """Fill the ``Batch`` fields from the transition ids ``(N, H)`` by fancy indexing."""
    mask = ids != tb["dead"]
    terminated = tb["term"].take(ids)
    truncated = np.zeros_like(mask)
    truncated[:, H - 1] = mask[:, H - 1] & ~terminated[:, H - 1]
    return Batch._trusted(states=tb["s"].take(ids), actions=tb["a"].take(ids),
                          rewards=tb["r"].take(ids), log_probs=tb["logp"].take(ids),
                          next_states=tb["s2"].take(ids), terminated=terminated,
                          truncated=truncated, mask=mask,
                          n_states=mdp.n_states, n_actions=mdp.n_actions)


def sample_batch(mdp, policy, theta, n_episodes, rng, *, horizon=None, start_states=None,
                 first_actions=None):
    """``sample_from_table`` (S1) with ``pi = policy.probs_table(theta)``.

    ``policy`` must be a tabular-capable ``SoftmaxPolicy`` (observations are
    state indices).

    derivations/sampling.md#sampling-episodes
    """
    if not isinstance(policy, SoftmaxPolicy) or policy.n_states is None:
        raise TypeError(f"policy must be a tabular-capable SoftmaxPolicy; got {policy!r}")
    return sample_from_table(mdp, policy.probs_table(theta), n_episodes, rng, horizon=horizon,
                             start_states=start_states, first_actions=first_actions)
