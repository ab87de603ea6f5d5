"""The packed ``Transitions`` (refpg.transitions, derivations/sampling.md#packed-transitions).

Each validation rule is exercised by breaking one field of a hand-written valid
value (the error must name the field); ``to_batch`` is compared with a padded
batch written out by hand, and ``from_batch`` / ``to_batch`` are checked to be
inverse to each other (round trips in both directions).
"""
from dataclasses import fields

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from refpg.batch import Batch
from refpg.transitions import Transitions


def valid_fields():
    """Three episodes: 3 steps terminated, empty (started in a terminal state), 2 steps
    truncated (hand-written)."""
    return dict(states=np.array([0, 1, 2, 0, 2]), actions=np.array([1, 0, 1, 0, 0]),
                rewards=np.array([1.0, 0.5, -1.0, 0.0, 2.0]),
                log_probs=np.array([-0.1, -2.0, -0.3, -1.0, -1.0]),
                next_states=np.array([1, 2, 3, 2, 1]),
                terminated=np.array([0, 0, 1, 0, 0], bool),
                truncated=np.array([0, 0, 0, 0, 1], bool),
                offsets=np.array([0, 3, 3, 5]), n_states=4, n_actions=2)


def padded_by_hand():
    """``valid_fields()`` padded to T = 4 (written out, not computed)."""
    return dict(states=[[0, 1, 2, 0], [0, 0, 0, 0], [0, 2, 0, 0]],
                actions=[[1, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
                rewards=[[1.0, 0.5, -1.0, 0.0], [0, 0, 0, 0], [0.0, 2.0, 0, 0]],
                log_probs=[[-0.1, -2.0, -0.3, 0], [0, 0, 0, 0], [-1.0, -1.0, 0, 0]],
                next_states=[[1, 2, 3, 0], [0, 0, 0, 0], [2, 1, 0, 0]],
                terminated=[[0, 0, 1, 0], [0, 0, 0, 0], [0, 0, 0, 0]],
                truncated=[[0, 0, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]],
                mask=[[1, 1, 1, 0], [0, 0, 0, 0], [1, 1, 0, 0]])


def test_a_valid_value_and_its_properties():
    tr = Transitions(**valid_fields())
    assert tr.n_episodes == 3 and tr.n_transitions == 5
    assert_array_equal(tr.lengths, [3, 0, 2])
    assert_array_equal(tr.episode, [0, 0, 0, 2, 2])
    assert_array_equal(tr.step, [0, 1, 2, 0, 1])
    assert tr.states.dtype == np.int64 and tr.rewards.dtype == np.float64
    assert tr.terminated.dtype == bool and tr.offsets.dtype == np.int64
    with pytest.raises(ValueError):
        tr.rewards[0] = 5.0                              # read-only


def test_fields_are_copied_not_aliased():
    f = valid_fields()
    tr = Transitions(**f)
    f["rewards"][0] = 99.0
    assert tr.rewards[0] == 1.0


@pytest.mark.parametrize("field, value, match", [
    ("rewards", [1.0, np.nan, 0, 0, 0], "rewards"),
    ("rewards", [[1.0, 0.5, -1.0, 0.0, 2.0]], "rewards"),
    ("log_probs", [-0.1, -np.inf, -0.3, -1.0, -1.0], "log_probs"),
    ("log_probs", [-0.1, -2.0], "log_probs"),
    ("states", [0, 1, 2, 0, 7], "states"),
    ("actions", [1, 0, 1, 0, 2], "actions"),
    ("next_states", [1, 2, 3, 2], "next_states"),
    ("terminated", [0, 0, 0, 0, 0], "terminated"),               # episode 0 never ends
    ("terminated", [0, 1, 1, 0, 0], "terminated"),               # an end inside an episode
    ("terminated", [0.0, 0, 1, 0, 0], "terminated"),              # not boolean
    ("truncated", [0, 0, 1, 0, 1], "terminated|truncated"),       # both at row 2
    ("offsets", [0, 3, 3, 4], "offsets"),                         # does not end at M
    ("offsets", [1, 3, 3, 5], "offsets"),
    ("offsets", [0, 3, 2, 5], "offsets"),                         # decreasing
    ("offsets", [0.0, 3, 3, 5], "offsets"),
])
def test_bad_fields_are_rejected_by_name(field, value, match):
    f = valid_fields()
    f[field] = np.array(value)
    with pytest.raises(ValueError, match=match):
        Transitions(**f)


def test_to_batch_matches_the_padding_written_by_hand():
    b = Transitions(**valid_fields()).to_batch(max_steps=4)
    for name, want in padded_by_hand().items():
        assert_array_equal(getattr(b, name), np.array(want, dtype=getattr(b, name).dtype),
                           err_msg=name)
    Batch(**{f.name: getattr(b, f.name) for f in fields(b)})     # valid by the public rules
    assert Transitions(**valid_fields()).to_batch().max_steps == 3   # default: the longest


def test_to_batch_rejects_a_short_width():
    tr = Transitions(**valid_fields())
    with pytest.raises(ValueError, match="max_steps"):
        tr.to_batch(max_steps=2)
    with pytest.raises(TypeError, match="max_steps"):
        tr.to_batch(max_steps=3.0)


def test_round_trips_batch_to_transitions_and_back():
    hand = padded_by_hand()
    b = Batch(**{k: np.array(v) for k, v in hand.items()}, n_states=4, n_actions=2)
    tr = Transitions.from_batch(b)
    for name, want in valid_fields().items():
        got = getattr(tr, name)
        if isinstance(want, np.ndarray):
            assert_array_equal(got, want, err_msg=name)
            assert got.dtype == (np.float64 if want.dtype.kind == "f" else want.dtype) or \
                want.dtype.kind == "i"
        else:
            assert got == want
    Transitions(**{f.name: getattr(tr, f.name) for f in fields(tr)})   # valid
    back = tr.to_batch(max_steps=b.max_steps)
    for f in fields(b):
        assert_array_equal(getattr(back, f.name), getattr(b, f.name), err_msg=f.name)


def test_vector_states_and_all_empty_episodes():
    f = valid_fields()
    rng = np.random.default_rng(0)
    f["states"] = rng.standard_normal((5, 3))
    f["next_states"] = rng.standard_normal((5, 3))
    f["n_states"] = None
    tr = Transitions(**f)
    b = tr.to_batch()
    assert b.states.shape == (3, 3, 3)
    assert_array_equal(b.states[2, :2], f["states"][3:])
    assert_array_equal(Transitions.from_batch(b).next_states, f["next_states"])
    empty = Transitions(states=np.zeros(0, np.int64), actions=np.zeros(0, np.int64),
                        rewards=np.zeros(0), log_probs=np.zeros(0),
                        next_states=np.zeros(0, np.int64), terminated=np.zeros(0, bool),
                        truncated=np.zeros(0, bool), offsets=[0, 0, 0])
    assert_array_equal(empty.lengths, [0, 0])
    eb = empty.to_batch()
    assert eb.rewards.shape == (2, 1) and not eb.mask.any()
    assert_array_equal(Transitions.from_batch(eb).offsets, [0, 0, 0])


def test_from_batch_needs_a_batch():
    with pytest.raises(TypeError, match="batch"):
        Transitions.from_batch({"rewards": [[0.0]]})


def test_returns_of_the_packed_row_equal_those_of_the_padded_batch():
    """The returns code takes the packed layout as one row of episodes back to back
    (derivations/sampling.md#packed-transitions): reward-to-go and GAE on it equal the
    padded Batch's, per valid cell, to rounding (different solvers: 1e-12 of the scale)."""
    from refpg.mdp import random_mdp
    from refpg.returns import gae, reward_to_go
    from refpg.sampling import sample_transitions

    # terminal states and a 12-step limit: both terminated and truncated episodes
    mdp = random_mdp(np.random.default_rng(2), 5, 2, gamma=0.9, n_terminal=1, horizon=12)
    pi = np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)
    tr = sample_transitions(mdp, pi, 50, np.random.default_rng(3))
    b = tr.to_batch(max_steps=12)
    V = np.linspace(-1.0, 1.0, mdp.n_states)
    row = dict(terminated=tr.terminated[None], truncated=tr.truncated[None])
    G_row = reward_to_go(tr.rewards[None], 0.9, next_values=V[tr.next_states][None], **row)
    G_pad = reward_to_go(b.rewards, 0.9, next_values=V[b.next_states], terminated=b.terminated,
                         truncated=b.truncated, mask=b.mask)
    scale = np.abs(G_pad).max()
    np.testing.assert_allclose(G_row[0], G_pad[b.mask], rtol=0, atol=1e-12 * scale)
    A_row = gae(tr.rewards[None], V[tr.states][None], V[tr.next_states][None], 0.9, 0.8,
                **row).advantages
    A_pad = gae(b.rewards, V[b.states], V[b.next_states], 0.9, 0.8, terminated=b.terminated,
                truncated=b.truncated, mask=b.mask).advantages
    np.testing.assert_allclose(A_row[0], A_pad[b.mask], rtol=0, atol=1e-12 * scale)
