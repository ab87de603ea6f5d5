"""Rolling out policies on finite MDPs into ``Transitions`` or a ``Batch`` (issue 3, item 1).

``sample_transitions(mdp, pi, n_episodes, rng, horizon=H)`` draws ``N``
independent episodes of at most ``H`` steps:

    s_0 ~ rho0 (or given start states),  (a_t, s_{t+1}) ~ pi(a|s_t) P(s'|s_t, a)   (S1)

stopping an episode when ``s_{t+1}`` is terminal (``terminated``) or at its
``H``-th step (``truncated``, exactly gymnasium's TimeLimit semantics), and
returns them packed back to back (``refpg.transitions.Transitions``);
``sample_from_table`` returns the same draw padded as a ``Batch`` ``(N, H)``.

How it is fast (derivations/sampling.md#the-joint-table,
#walker-alias-tables, #the-streaming-roll): the pair ``(a_t, s_{t+1})`` is
drawn in one go from the per-state joint table ``pi(a|s) P(s'|s, a)`` (S2),
each row of which is turned once into a Walker/Vose alias table (S3). One
uniform ``u`` per transition gives both the column ``k = floor(K u)`` and the
coin ``K u - k`` (S4). A fixed working set of ``_WIDTH`` slots runs the
episodes like a vectorised environment (S5): a slot whose episode ends starts
the next one. The loop records one integer per step (the *transition id*) and
every field is read from per-id tables afterwards, episode-major.
derivations/sampling.md#sampling-episodes
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .batch import Batch
from .evaluation import check_policy_table
from .policies.base import SoftmaxPolicy
from .transitions import Transitions
from .validation import (as_float_array, as_index_array, check_positive_int,
                         check_probabilities, check_rng)

__all__ = ["AliasTable", "alias_table", "joint_table", "sample_batch", "sample_from_table",
           "sample_transitions"]

#: The streaming roll keeps this many episodes running at once (a slot that
#: finishes an episode starts the next one). It fixes the order in which
#: ``rng`` is consumed, hence the sample for a seed: do not change it casually.
#: Chosen by measurement (derivations/sampling.md#the-streaming-roll).
_WIDTH = 4096
#: The id buffer of the streaming roll is first allocated for at most this many
#: cells (then doubled as needed); it does not affect the sample.
_BUFFER = 1 << 24
#: The id buffer is written in blocks of ``2**_BLOCK_BITS`` steps, slot-major
#: inside a block (a cache-resident strided write), then laid out per slot so
#: that gathering an episode reads contiguous memory (a time-major buffer makes
#: that gather stride through memory: several times slower on Taxi).
_BLOCK_BITS = 5


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
    # the positive outcomes of each row in increasing order, then zero-probability padding
    r_pos, c_pos = np.nonzero(positive)          # row-major: sorted by row, then column
    rank = np.arange(r_pos.size) - np.repeat(np.cumsum(counts) - counts, counts)
    support = np.zeros((R, K), np.int64)
    support[r_pos, rank] = c_pos
    w = np.zeros((R, K))
    w[r_pos, rank] = p[r_pos, c_pos]
    pad = np.arange(K)[None, :] >= counts[:, None]
    short = np.flatnonzero(counts < K)
    if short.size:                               # pad with the first zero-probability outcomes
        zero_cols = np.argsort(positive[short], axis=1, kind="stable")[:, :K]
        support[pad] = zero_cols[np.arange(K)[None, :] < (K - counts[short])[:, None]]
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
    """Flat per-slot and per-id tables; see derivations/sampling.md#transition-ids.

    Slots ``s*K + k`` hold column ``k`` of state ``s``'s joint alias table:
    ``thr[slot] = k + q`` (S4). The slots of the "dead" row ``S*K .. S*K+K-1``
    and of terminal states have ``thr = -1`` and the dead outcome as alias
    (padding). With ``with_conditional`` the slots from ``(S+1)*K`` on hold the
    tables of ``P(. | s, a)`` (a forced first action). A transition id is
    ``2 slot + coin`` (coin 1: the column's own outcome, 0: its alias); per-id
    tables give ``s, a, s2, term, r, logp`` and ``next_row`` (the slot row of
    ``s'``, or ``dead`` once the episode has ended); ``live[id]`` is False for
    the padding outcome, whose canonical id is ``dead_id = 2 dead``.
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
    tb = dict(columns=K, dead=dead, dead_id=2 * dead)
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
    slot = {key: np.concatenate([p[key] for p in parts]) for key in ("s", "code", "thr", "alt")}
    for s in np.flatnonzero(mdp.terminal):       # never stepped from: padding
        slot["thr"][s * K:(s + 1) * K] = -1.0
        slot["alt"][s * K:(s + 1) * K] = dead
    n_slots = slot["s"].size
    is_dead = np.zeros(n_slots, bool)
    is_dead[dead:dead + K] = True
    outcome = np.empty(2 * n_slots, np.int64)    # the slot whose own outcome id 2j + c is
    outcome[1::2] = np.arange(n_slots)
    outcome[0::2] = slot["alt"]
    tb["thr"] = slot["thr"]
    tb["live"] = ~is_dead[outcome]
    tb["s"] = slot["s"][outcome]
    tb["a"] = slot["code"][outcome] // S
    tb["s2"] = slot["code"][outcome] % S
    tb["term"] = mdp.terminal[tb["s2"]] & tb["live"]
    tb["next_row"] = np.where(tb["term"] | ~tb["live"], dead, tb["s2"] * K)
    tb["r"] = np.where(tb["live"], mdp.r[tb["s"], tb["a"]], 0.0)
    with np.errstate(divide="ignore"):
        tb["logp"] = np.where(tb["live"], np.log(pi)[tb["s"], tb["a"]], 0.0)
    for key in ("s", "a", "s2"):
        tb[key] = np.where(tb["live"], tb[key], 0)
    return tb


def _stream(tb, row0, H, rng, width=None):
    """Roll ``n`` episodes from the slot rows ``row0: (n,)`` (none dead), at most ``H`` steps each.

    (S5) A fixed working set of ``W = min(width, n)`` slots: every step draws
    one transition per running slot (S4); a slot whose episode ends (terminal
    state reached, or its ``H``-th step) takes the next episode not yet
    started, in index order. Once none is left the working set decays and is
    compacted when half of it is finished. Returns ``(ids, base, length)``:
    ``ids: (n_blocks, W, B)`` int64 transition ids (``B = 2^_BLOCK_BITS``
    steps per block, slot-major inside a block, so that an episode's ids are
    contiguous within a block; cells outside the episodes are garbage),
    ``start, slot, length: (n,)``: episode ``e``'s id at step ``t`` is
    ``ids[(start[e] + t) // B, slot[e], (start[e] + t) % B]``.
    derivations/sampling.md#the-streaming-roll
    """
    width = _WIDTH if width is None else width
    K, dead = tb["columns"], tb["dead"]
    thr, next_row = tb["thr"], tb["next_row"]
    n = row0.size
    W = min(width, n)
    # steps <= (transitions in the full phase) / W + H <= n H / W + H; the buffer is
    # allocated for that bound (untouched pages cost nothing) up to _BUFFER cells, then grown
    B = 1 << _BLOCK_BITS
    bound = (n * H // W + H + 1) // B + 1       # in blocks
    buf = np.empty((min(bound, max(2, _BUFFER // (W * B))), W, B), np.int64)
    start = np.zeros(n, np.int64)                # step of an episode's first transition
    slot = np.empty(n, np.int64)                 # its column in the buffer
    end = np.empty(n, np.int64)                  # one past the step of its last transition
    slot[:W] = np.arange(W)
    row = row0[:W].copy()
    slot_ep = np.arange(W, dtype=np.int64)       # the episode each slot is running
    started = [(slot[:W].copy(), slot_ep.copy())]   # started[s]: (slots, episodes) begun at s
    nxt = W
    x = np.empty(W)
    k = np.empty(W, np.int64)
    ids = np.empty(W, np.int64)
    th = np.empty(W)
    ts = np.empty(W, np.int64)
    keep = np.empty(W, bool)
    ended = np.empty(W, bool)
    t = 0

    def grow(buf):
        new = np.empty((min(bound, 2 * buf.shape[0]), W, B), np.int64)
        new[:buf.shape[0]] = buf
        return new

    # ---- full working set: episodes left to start.  Takes use mode="clip" (no
    # bounds-check buffering): every index is in range by construction.
    while True:
        if t >> _BLOCK_BITS == buf.shape[0]:
            buf = grow(buf)
        rng.random(out=x)                        # (S4): x = K u, column floor(x), coin
        np.multiply(x, K, out=x)
        np.copyto(k, x, casting="unsafe")        # floor: x >= 0
        np.add(row, k, out=ids)                  # the slot
        thr.take(ids, out=th, mode="clip")
        np.less(x, th, out=keep)                 # own outcome (1) or alias (0)
        np.add(ids, ids, out=ts)
        np.add(ts, keep, out=ts)                 # transition id 2 slot + coin
        buf[t >> _BLOCK_BITS, :, t & (B - 1)] = ts
        next_row.take(ts, out=row, mode="clip")
        np.equal(row, dead, out=ended)
        if t >= H - 1:                           # time limit of the episodes begun at t-H+1
            b = started[t - H + 1]
            if b is not None:
                s_b, e_b = b
                ended[s_b[slot_ep[s_b] == e_b]] = True
        t += 1
        done = ended.nonzero()[0]
        if done.size == 0:
            started.append(None)
            continue
        end[slot_ep[done]] = t
        m = min(done.size, n - nxt)
        if m:
            s_new = done[:m]
            e_new = np.arange(nxt, nxt + m, dtype=np.int64)
            row[s_new] = row0[nxt:nxt + m]
            slot_ep[s_new] = e_new
            start[nxt:nxt + m] = t
            slot[nxt:nxt + m] = s_new
            started.append((s_new, e_new))
            nxt += m
        else:
            started.append(None)
        if m < done.size:                        # no episode left: the tail
            row[done[m:]] = dead
            break
    # ---- the tail: a decaying working set, compacted when half of it is finished
    cols = np.arange(W)
    deadline = start[slot_ep] + H - 1            # the step of each running episode's last draw
    deadline[row == dead] = -1                   # finished (draws padding from now on)
    while True:
        live = deadline >= 0
        n_live = int(np.count_nonzero(live))
        if n_live == 0:
            break
        if 2 * n_live <= cols.size:
            cols, row, deadline = cols[live], row[live], deadline[live]
        if t >> _BLOCK_BITS == buf.shape[0]:
            buf = grow(buf)
        w = cols.size
        xs, ks, ids_, th_, kp, fin = x[:w], k[:w], ids[:w], th[:w], keep[:w], ended[:w]
        rng.random(out=xs)
        np.multiply(xs, K, out=xs)
        np.copyto(ks, xs, casting="unsafe")
        np.add(row, ks, out=ids_)
        thr.take(ids_, out=th_, mode="clip")
        np.less(xs, th_, out=kp)
        ts = ids_ + ids_
        np.add(ts, kp, out=ts)
        if w == W:
            buf[t >> _BLOCK_BITS, :, t & (B - 1)] = ts
        else:
            buf[t >> _BLOCK_BITS, cols, t & (B - 1)] = ts
        next_row.take(ts, out=row, mode="clip")
        np.equal(row, dead, out=fin)
        fin |= deadline == t
        fin &= deadline >= 0
        t += 1
        newly = fin.nonzero()[0]
        if newly.size:
            end[slot_ep[cols[newly]]] = t
            deadline[newly] = -1
            row[newly] = dead
    return buf[:(t - 1 >> _BLOCK_BITS) + 1], start, slot, end - start


def _gather_ids(buf, N, M, offsets, rolled, start, slot, first):
    """The transition ids episode-major ``(M,)``: output row ``offsets[e] + t`` is step ``t``.

    The blocks of ``_stream`` are first laid out per slot (``lanes: (W, steps)``,
    a copy of contiguous runs of ``B`` ids), so that each episode's streamed
    steps are contiguous: ``lanes[slot[e], start[e] + t]``. Then one gather:
    ``idx = repeat(val_e - row_e, lengths) + arange(M)``. A forced first step
    (``first = (ids, has)``) is row ``offsets[e]``, placed afterwards.
    """
    lengths = np.diff(offsets)
    if buf is not None:
        n_blocks, W, B = buf.shape
        lanes = np.ascontiguousarray(buf.transpose(1, 0, 2)).reshape(W, n_blocks * B)
        src = lanes.reshape(-1)
        val = np.zeros(N, np.int64)              # source index of row offsets[e] (+ 1)
        val[rolled] = slot * (n_blocks * B) + start
    else:
        src = np.empty(0, np.int64)
        val = np.zeros(N, np.int64)
    a0 = 0 if first is None else 1
    idx = np.repeat(val - offsets[:-1] - a0, lengths)
    idx += np.arange(M, dtype=np.int64)
    if first is not None:
        ids0, has = first
        idx[offsets[:-1][has]] = src.size + np.flatnonzero(has)
        src = np.concatenate([src, ids0])
    return src.take(idx, mode="clip")           # clip: in range by construction, no buffering


def _draw_ids(mdp, pi, n_episodes, rng, horizon, start_states, first_actions):
    """Validate the arguments of ``sample_transitions`` and draw the transition ids.

    Returns ``(tb, tid, offsets, lengths, s0, H)``: ``tid: (M,)`` episode-major."""
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
    K, dead = tb["columns"], tb["dead"]
    if start_states is None:               # AliasTable.sample (S4), for one row
        t0 = alias_table(mdp.rho0[None, :])
        x = rng.random(N) * t0.n_columns
        k = x.astype(np.int64)
        keep = (x - k) < t0.threshold[0].take(k)
        s0 = t0.support[0].take(np.where(keep, k, t0.alias[0].take(k)))
    else:
        s0 = start_states
    if first_actions is None:
        row0 = np.where(mdp.terminal[s0], dead, s0 * K)
        first, budget = None, H
    else:
        bad = (pi[s0, first_actions] <= 0) & ~mdp.terminal[s0]
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"first_actions[{i}] = {int(first_actions[i])} has probability 0 "
                             f"under pi in the start state {int(s0[i])}: its log-probability "
                             f"would be -inf")
        # the forced first step of every episode, up front, from the tables P(. | s, a_0) (S4)
        K2 = tb["cond_columns"]
        x = rng.random(N) * K2
        slot = tb["cond_offset"] + (s0 * A + first_actions) * K2 + x.astype(np.int64)
        first = 2 * slot + (x < tb["thr"][slot])
        first[mdp.terminal[s0]] = tb["dead_id"]
        row0 = tb["next_row"][first] if H > 1 else np.full(N, dead, np.int64)
        budget = H - 1
    rolled = np.flatnonzero(row0 != dead)
    lengths = np.zeros(N, np.int64)
    if first is not None:
        has_first = tb["live"][first]
        lengths += has_first
    if rolled.size:
        buf, start, slot, roll_len = _stream(tb, row0[rolled], budget, rng)
        lengths[rolled] += roll_len
    offsets = np.zeros(N + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    M = int(offsets[-1])
    tid = _gather_ids(buf if rolled.size else None, N, M, offsets, rolled,
                      start if rolled.size else None, slot if rolled.size else None,
                      None if first is None else (first, has_first))
    return tb, tid, offsets, lengths, s0, H


def _draw_transitions(mdp, pi, n_episodes, rng, horizon, start_states, first_actions):
    """Draw (``_draw_ids``) and read every field from the per-id tables: ``(Transitions, H)``."""
    tb, tid, offsets, lengths, s0, H = _draw_ids(mdp, pi, n_episodes, rng, horizon,
                                                 start_states, first_actions)
    M = tid.size
    S, A = mdp.n_states, mdp.n_actions
    terminated = tb["term"].take(tid, mode="clip")
    truncated = np.zeros(M, bool)
    last = offsets[1:][lengths > 0] - 1
    truncated[last] = ~terminated[last]
    next_states = tb["s2"].take(tid, mode="clip")
    # s_t of a step is s_{t+1} of the step before it (the chain), except at an episode's start
    states = np.empty(M, np.int64)
    states[1:] = next_states[:-1]
    states[offsets[:-1][lengths > 0]] = s0[lengths > 0]
    out = Transitions._trusted(states=states,
                               actions=tb["a"].take(tid, mode="clip"),
                               rewards=tb["r"].take(tid, mode="clip"),
                               log_probs=tb["logp"].take(tid, mode="clip"),
                               next_states=next_states, terminated=terminated,
                               truncated=truncated, offsets=offsets,
                               n_states=S, n_actions=A)
    return out, H


def sample_transitions(mdp, pi, n_episodes, rng, *, horizon=None, start_states=None,
                       first_actions=None):
    """``N`` episodes under the policy table ``pi: (S, A)``, packed: a ``Transitions`` (P1).

    Draws (S1) with the joint alias tables (S2)-(S4) and the streaming roll
    (S5): ``s_0 ~ rho0`` for all episodes (one alias draw each), then per step
    one uniform gives ``(a_t, s_{t+1})``. The step that enters a terminal state
    is ``terminated``; the ``H``-th step of an episode that does not is
    ``truncated`` (gymnasium's TimeLimit). Episodes that start in a terminal
    state are empty. ``start_states: (N,)`` replaces ``s_0 ~ rho0`` (vine
    rollouts reset to a state); ``first_actions: (N,)`` forces ``a_0`` (then
    ``s_1 ~ P(. | s_0, a_0)``; its ``log_prob`` is still ``log pi(a_0 | s_0)``,
    which must be finite). ``horizon`` defaults to ``mdp.horizon``. Rewards are
    ``r(s_t, a_t)``, the MDP's expected rewards. Every field is materialised;
    the same ``rng`` state gives bit-identical output, and ``sample_from_table``
    with the same state gives the same episodes padded.
    derivations/sampling.md#the-streaming-roll
    """
    return _draw_transitions(mdp, pi, n_episodes, rng, horizon, start_states, first_actions)[0]


def sample_from_table(mdp, pi, n_episodes, rng, *, horizon=None, start_states=None,
                      first_actions=None):
    """``N`` episodes under the policy table ``pi: (S, A)``; returns a ``Batch`` ``(N, H)``.

    Exactly ``sample_transitions(...).to_batch(max_steps=H)`` (P2): the same
    draw (S1) by (S2)-(S5), episode ``i`` in row ``i``, padded with zeros to
    ``H = horizon`` (default ``mdp.horizon``) steps. See ``sample_transitions``
    for ``start_states: (N,)`` and ``first_actions: (N,)``. The padded layout
    costs about as many cells as steps per episode are missing to ``H``; prefer
    ``sample_transitions`` when episodes are short
    (derivations/sampling.md#packed-transitions).
    derivations/sampling.md#sampling-episodes
    """
    tb, tid, offsets, lengths, s0, H = _draw_ids(mdp, pi, n_episodes, rng, horizon,
                                                 start_states, first_actions)
    # the ids padded to (N, H) by one scatter, then every field by one gather each
    # (as Transitions.to_batch would give, without building the packed fields first)
    N = lengths.size
    pos = np.repeat(np.arange(N, dtype=np.int64) * H - offsets[:-1], lengths)
    pos += np.arange(tid.size, dtype=np.int64)
    ids = np.full(N * H, tb["dead_id"], np.int64)
    ids[pos] = tid
    ids = ids.reshape(N, H)
    mask = tb["live"].take(ids)
    terminated = tb["term"].take(ids)
    truncated = np.zeros_like(mask)
    rows = np.flatnonzero(lengths)
    last = lengths[rows] - 1
    truncated[rows, last] = ~terminated[rows, last]
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
