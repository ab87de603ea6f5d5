"""The validated Batch (refpg.batch, derivations/sampling.md#the-batch).

Each rule of the Batch is exercised by breaking one field of a hand-written
valid batch; the error must be a ValueError naming that field.
"""
import numpy as np
import pytest
from numpy.testing import assert_array_equal

from refpg.batch import Batch


def valid_fields():
    """Two episodes: row 0 terminated after 3 steps, row 1 truncated after 4 (hand-written)."""
    mask = np.array([[1, 1, 1, 0], [1, 1, 1, 1]], bool)
    term = np.array([[0, 0, 1, 0], [0, 0, 0, 0]], bool)
    trunc = np.array([[0, 0, 0, 0], [0, 0, 0, 1]], bool)
    return dict(states=np.array([[0, 1, 2, 0], [0, 2, 1, 2]]),
                actions=np.array([[1, 0, 1, 0], [0, 0, 1, 1]]),
                rewards=np.array([[1.0, 0.5, -1.0, 0.0], [0.0, 2.0, 1.0, 1.0]]),
                log_probs=np.array([[-0.1, -2.0, -0.3, 0.0], [-1.0, -1.0, -0.5, -0.5]]),
                next_states=np.array([[1, 2, 3, 0], [2, 1, 2, 0]]),
                terminated=term, truncated=trunc, mask=mask, n_states=4, n_actions=2)


def test_a_valid_batch_and_its_properties():
    b = Batch(**valid_fields())
    assert b.n_episodes == 2 and b.max_steps == 4
    assert_array_equal(b.lengths, [3, 4])
    assert b.rewards.dtype == np.float64 and b.states.dtype == np.int64
    with pytest.raises(ValueError):
        b.rewards[0, 0] = 5.0                       # read-only
    c = b.replace(rewards=b.rewards * 2)
    assert_array_equal(c.rewards, 2 * b.rewards)


def test_fields_are_copied_not_aliased():
    f = valid_fields()
    b = Batch(**f)
    f["rewards"][0, 0] = 99.0
    assert b.rewards[0, 0] == 1.0


def test_trusted_constructor_matches_the_validated_one():
    f = valid_fields()
    a = Batch(**f)
    b = Batch._trusted(**{k: (np.array(v) if isinstance(v, np.ndarray) else v)
                          for k, v in f.items()})
    for k in ("states", "actions", "rewards", "log_probs", "next_states", "terminated",
              "truncated", "mask"):
        assert_array_equal(getattr(a, k), getattr(b, k))
        assert not getattr(b, k).flags.writeable


def test_vector_observations_and_actions():
    f = valid_fields()
    f["states"] = np.zeros((2, 4, 3))
    f["next_states"] = np.ones((2, 4, 3))
    f["actions"] = np.zeros((2, 4, 1))
    f["n_states"] = f["n_actions"] = None
    b = Batch(**f)
    assert b.states.shape == (2, 4, 3) and b.actions.dtype == np.float64


def _set(field, value):
    def change(f):
        f[field] = value(f[field]) if callable(value) else value
    return change


def _flip(field, idx):
    def change(f):
        arr = f[field].copy()
        arr[idx] = ~arr[idx]
        f[field] = arr
    return change


def _put(field, idx, value):
    def change(f):
        arr = f[field].astype(float) if field in ("rewards", "log_probs") else f[field].copy()
        arr[idx] = value
        f[field] = arr
    return change


@pytest.mark.parametrize("change, match", [
    (_set("rewards", lambda r: r[:, :3]), "log_probs"),
    (_put("rewards", (0, 1), np.nan), "rewards"),
    (_put("log_probs", (1, 0), np.nan), "log_probs"),
    (_put("log_probs", (1, 0), -np.inf), "log_probs"),
    (_put("rewards", (0, 3), 1.0), "rewards must be 0 on padding"),
    (_flip("mask", (1, 1)), "mask"),
    (_set("mask", lambda m: m.astype(float) * 0.5), "mask"),
    (_flip("terminated", (1, 3)), "exclusive"),
    (_flip("terminated", (0, 2)), "last valid step"),
    (_flip("truncated", (0, 0)), "terminated/truncated"),
    (_flip("terminated", (0, 3)), "padding"),
    (_put("states", (0, 0), 7), "states"),
    (_put("actions", (0, 0), -1), "actions"),
    (_set("next_states", lambda s: s[:, :, None] * np.ones(2)), "next_states"),
    (_set("states", lambda s: s[:1]), "states"),
])
def test_each_rule_raises_value_error_naming_the_field(change, match):
    f = valid_fields()
    change(f)
    with pytest.raises(ValueError, match=match):
        Batch(**f)


def test_float_index_arrays_and_an_empty_time_axis():
    # found by the session-4 audit: (N, T) float states passed as "vectors" and skipped the
    # range check (7.0 with n_states = 3, or 0.5); a T = 0 batch raised IndexError
    z = np.zeros((1, 3))
    fields = dict(actions=[[0, 0, 0]], rewards=z, log_probs=z, next_states=[[0, 0, 0]],
                  terminated=[[0, 0, 1]], truncated=[[0, 0, 0]], mask=[[1, 1, 1]])
    for bad in ([[7.0, 1.0, 0.0]], [[0.5, 1.0, 0.0]]):
        with pytest.raises(ValueError, match="states of shape .* must be integer indices"):
            Batch(states=bad, n_states=3, **fields)
    Batch(states=np.zeros((1, 3, 2)), **{**fields, "next_states": np.zeros((1, 3, 2))})
    with pytest.raises(ValueError, match="states must be non-negative indices; found -1"):
        Batch(states=[[0, -1, 0]], **fields)                  # even without n_states
    with pytest.raises(ValueError, match=r"found 9223372036854775813"):   # no uint64 wrap
        Batch(states=np.array([[0, 2**63 + 5, 0]], np.uint64), n_states=3, **fields)
    e = np.zeros((2, 0))
    empty = Batch(states=e.astype(int), actions=e.astype(int), rewards=e, log_probs=e,
                  next_states=e.astype(int), terminated=e.astype(bool),
                  truncated=e.astype(bool), mask=e.astype(bool))
    assert_array_equal(empty.lengths, [0, 0])
