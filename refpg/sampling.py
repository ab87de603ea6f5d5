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
episodes like a vectorised environment (S5), each slot a fixed quota of
consecutive episodes back to back. The loop records one integer per step (the
*transition id*); each slot's record is its episodes in order, so the packed
ids are the records one after the other, and every field is read from per-id
tables afterwards.
derivations/sampling.md#sampling-episodes
"""
from __future__ import annotations

import numpy as np

from .alias import AliasTable, _packed_rows, _sweep, alias_table
from .batch import Batch
from .evaluation import check_policy_table
from .policies.base import SoftmaxPolicy
from .transitions import Transitions
from .validation import as_index_array, check_positive_int, check_rng

__all__ = ["AliasTable", "alias_table", "joint_table", "sample_batch", "sample_from_table",
           "sample_transitions"]

#: The streaming roll keeps this many episodes running at once (each slot runs
#: a fixed quota of episodes back to back). It fixes the order in which
#: ``rng`` is consumed, hence the sample for a seed: do not change it casually.
#: Chosen by measurement (derivations/sampling.md#the-streaming-roll).
_WIDTH = 4096
#: The ids are written in blocks of ``2**_BLOCK_BITS`` steps, time-major (each
#: step writes one contiguous row), each block transposed to slot-major once
#: full, and the blocks laid side by side per slot, so that the packed output
#: is one sequential gather (a time-major buffer makes it stride through
#: memory: several times slower on Taxi).
_BLOCK_BITS = 6
#: Transition ids are recorded as int16 while there are at most this many (else int32).
_INT16_IDS = 1 << 15
#: the largest horizon accepted: step counters are int64 and ``t + H`` must not overflow.
_MAX_HORIZON = 1 << 62


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
    # alias_table(joint_table(mdp, pi)) from the nonzeros of P, without the dense (S, A S)
    # table (1.5 M entries for Taxi); padding columns have threshold 0 and are never drawn
    P = mdp.P.reshape(-1)
    nz = np.flatnonzero(P > 0)                   # (s A + a) S + s2, increasing
    state, code = np.divmod(nz, A * S)           # code = a S + s2
    prob = pi.reshape(-1)[nz // S] * P[nz]
    pos = prob > 0
    joint = _sweep(*_packed_rows(state[pos], code[pos], prob[pos], S), A * S)
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
        sa, s2 = np.divmod(nz, S)
        cond = _sweep(*_packed_rows(sa, s2, P[nz], S * A), S)        # P(. | s, a)
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

    (S5) ``W = min(width, n)`` slots, each with a fixed quota of consecutive
    episodes: slot ``j`` runs episodes ``first[j] .. first[j+1] - 1`` back to
    back (the first ``n mod W`` slots one more than ``n // W``), every step
    drawing one transition per running slot (S4). An episode ends when it
    enters a terminal state or at its ``H``-th step, and its slot starts the
    next episode of its quota at the next step. A slot whose quota is done
    stops; the working set is compacted whenever half of it has stopped.
    The ids are recorded in time-major blocks of ``B = 2^_BLOCK_BITS`` steps,
    each copied transposed into the per-slot record ``lanes: (W, steps)`` at
    the end, so slot ``j``'s lane is its episodes back to back; episodes being
    numbered slot by slot, the packed episode-major ids are the lanes' valid
    prefixes one after the other. Returns ``(ids, lengths)``: ``ids: (M,)``
    int64 transition ids, episode-major, and ``lengths: (n,)``.
    derivations/sampling.md#the-streaming-roll
    """
    width = _WIDTH if width is None else width
    K, dead = tb["columns"], tb["dead"]
    thr, next_row = tb["thr"], tb["next_row"]
    n = row0.size
    W = min(width, n)
    B = 1 << _BLOCK_BITS
    quota = np.full(W, n // W, np.int64)
    quota[:n % W] += 1
    stop = np.cumsum(quota)                      # one past each slot's last episode
    first = stop - quota
    last = stop - 1
    ep = first.copy()                            # the episode each slot is running
    row = row0[ep]
    deadline = np.full(W, H - 1, np.int64)       # the step of the running episode's last draw
    cols = np.arange(W)                          # the slots still running, by compaction
    ends = np.empty(n, np.int64)
    # the ids in the smallest integer type that holds them (the transposition and the
    # packing below move a quarter of the bytes of int64), B steps per block, time-major
    cell = np.int16 if next_row.size <= _INT16_IDS else np.int32
    blocks = []
    blk = np.empty((B, W), cell)
    x = np.empty(W)
    k = np.empty(W, np.int64)
    ids = np.empty(W, np.int64)
    th = np.empty(W)
    ended = np.empty(W, bool)
    n_run = W
    t = 0
    # Takes use mode="clip" (no bounds-check buffering): indices are in range by construction.
    while True:
        w = cols.size
        xs, ks, ids_, th_, fin = x[:w], k[:w], ids[:w], th[:w], ended[:w]
        rng.random(out=xs)                       # (S4): x = K u, column floor(x), coin
        np.multiply(xs, K, out=xs)
        np.copyto(ks, xs, casting="unsafe")      # floor: x >= 0
        np.add(row, ks, out=ids_)                # the slot
        thr.take(ids_, out=th_, mode="clip")
        np.less(xs, th_, out=fin)                # own outcome (1) or alias (0)
        np.add(ids_, ids_, out=ids_)
        np.add(ids_, fin, out=ids_)              # transition id 2 slot + coin
        c = t & (B - 1)
        if w == W:
            blk[c] = ids_
        else:
            blk[c, cols] = ids_
        next_row.take(ids_, out=row, mode="clip")
        np.equal(row, dead, out=fin)             # entered a terminal state
        fin |= deadline == t                     # or its H-th step
        if n_run < w:
            fin &= deadline >= 0                 # stopped slots (deadline -1) draw padding
        t += 1
        if c == B - 1:                           # the block is full
            blocks.append(blk)
            blk = np.empty((B, W), cell)
        done = fin.nonzero()[0]
        if done.size == 0:
            continue
        e = ep[done]
        ends[e] = t
        e += 1
        ep[done] = e
        more = e < stop[done]
        nxt = done[more]                         # next episode of the quota, from step t
        row[nxt] = row0[e[more]]
        deadline[nxt] = t + H - 1
        if nxt.size < done.size:                 # quotas done: these slots stop
            out = done[~more]
            row[out] = dead
            deadline[out] = -1
            n_run -= out.size
            if n_run == 0:
                break
            if 2 * n_run <= w:
                keep = deadline >= 0
                cols, row, deadline, ep, stop = (a[keep] for a in (cols, row, deadline, ep, stop))
    if t & (B - 1):
        blocks.append(blk)
    # per slot (each slot's steps contiguous): one transposing copy per block, which stays
    # in cache (transposing the whole time-major buffer at once is several times slower)
    lanes = np.empty((W, t), cell)
    for b in range(len(blocks)):
        lanes[:, b * B:(b + 1) * B] = blocks[b][:t - b * B].T
        blocks[b] = None                         # freed as the record fills: resident memory stays about one record
    begins = np.empty(n, np.int64)               # where each episode starts in its lane
    begins[1:] = ends[:-1]
    begins[first] = 0
    # the packed ids: each lane's valid prefix, lane after lane (one boolean gather)
    valid = np.arange(lanes.shape[1]) < ends[last][:, None]
    return lanes[valid].astype(np.int64), ends - begins


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
    if H > _MAX_HORIZON:      # step counts are int64: t + H must not overflow
        raise ValueError(f"horizon must be at most 2**62 (a step count); got {H}")
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
    rolled = row0 != dead
    if rolled.all():
        tid, lengths = _stream(tb, row0, budget, rng)
    else:
        lengths = np.zeros(N, np.int64)
        tid = np.empty(0, np.int64)
        if rolled.any():
            tid, lengths[rolled] = _stream(tb, row0[rolled], budget, rng)
    if first is not None:                  # the forced first step goes before each episode
        has_first = tb["live"][first]
        e = np.flatnonzero(has_first)
        # offsets[e] of the final layout: rolled steps and forced steps of the episodes before e
        at = (np.cumsum(lengths)[e] - lengths[e]) + np.arange(e.size)
        lengths = lengths + has_first
        rest = np.ones(tid.size + at.size, bool)
        rest[at] = False
        out = np.empty(rest.size, np.int64)
        out[at] = first[has_first]
        out[rest] = tid
        tid = out
    offsets = np.zeros(N + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
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
    out = Transitions._trusted(states=tb["s"].take(tid, mode="clip"),
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
    which must be finite). ``horizon`` (at most 2**62) defaults to ``mdp.horizon``. Rewards are
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
