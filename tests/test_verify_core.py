"""refpg.verify.core: safe calls never crash, comparison is NaN-safe, shrinking finds
small counterexamples that still fail."""
import numpy as np
import pytest

from refpg.verify.core import (Case, compare_outputs, run_cases, safe_call, shrink_case,
                               to_numpy)


def test_safe_call_reports_every_problem():
    assert safe_call(lambda: 1 / 0).problem.startswith("raised ZeroDivisionError")
    assert "shape" in safe_call(lambda: np.zeros(3), shape=(4,)).problem
    assert "non-finite" in safe_call(lambda: np.array([1.0, np.nan]), shape=(2,)).problem
    assert "non-numeric" in safe_call(lambda: np.array(["a"]), shape=(1,)).problem
    assert "complex" in safe_call(lambda: np.array([1j]), shape=(1,)).problem
    out = safe_call(lambda: [1, 2], shape=(2,))
    assert out.problem == "" and out.value.dtype == np.float64


def test_to_numpy_on_a_tensor_like():
    class FakeTensor:
        def detach(self):
            return self

        def cpu(self):
            return self

        def numpy(self):
            return np.array([1.0, 2.0])

    np.testing.assert_array_equal(to_numpy(FakeTensor()), [1.0, 2.0])


def test_compare_outputs_nan_and_shape_fail():
    assert compare_outputs([1.0], [1.0], rtol=0, atol=0)[0]
    assert not compare_outputs([np.nan], [1.0], rtol=1, atol=1)[0]
    assert not compare_outputs([1.0, 2.0], [1.0], rtol=1, atol=1)[0]
    ok, err, idx = compare_outputs([1.0, 2.5, 3.0], [1.0, 2.0, 3.0], rtol=0, atol=0.1)
    assert not ok and err == pytest.approx(0.5) and idx == (1,)


def _cumsum_case(rng, N=5, T=12):
    return Case("random", {"r": rng.standard_normal((N, T)),
                           "done": rng.random((N, T)) < 0.2}, time_fields=("r", "done"))


def _reference(case):
    r, done = case.inputs["r"], case.inputs["done"]
    out = np.zeros_like(r)
    acc = np.zeros(r.shape[0])
    for t in range(r.shape[1] - 1, -1, -1):
        acc = r[:, t] + np.where(done[:, t], 0.0, acc)
        out[:, t] = acc
    return out


def _buggy(case):  # ignores the done flags: leaks reward across episode boundaries
    return np.cumsum(case.inputs["r"][:, ::-1], axis=1)[:, ::-1]


def test_shrinking_a_leak_across_episodes_gives_two_steps():
    rng = np.random.default_rng(0)
    case = _cumsum_case(rng)

    def fails(c):
        return not compare_outputs(_buggy(c), _reference(c), rtol=1e-12, atol=1e-12)[0]

    assert fails(case)
    small, calls = shrink_case(case, fails)
    assert fails(small)
    # the smallest leak: one episode ends at step 0, a reward follows at step 1
    assert small.size() == (1, 2)
    assert small.inputs["done"].tolist() == [[True, False]]
    assert calls < 3000


def test_run_cases_passes_a_correct_function_and_shrinks_a_wrong_one():
    rng = np.random.default_rng(1)
    cases = [_cumsum_case(rng) for _ in range(5)]

    def evaluate_with(user):
        return lambda c: (_reference(c), safe_call(user, (c,), shape=c.inputs["r"].shape))

    rep = run_cases("cumsum", cases, evaluate_with(_reference), tolerance=(1e-12, 1e-12))
    assert rep.passed and rep.n_cases == 5 and "PASSED" in str(rep)
    rep = run_cases("cumsum", cases, evaluate_with(_buggy), tolerance=(1e-12, 1e-12))
    assert not rep.passed and rep.problem == "mismatch"
    assert rep.inputs["r"].shape == (1, 2) and "shrunk from" in str(rep)
    rep.to_json()  # serialisable


def test_a_raising_user_function_is_a_failed_report_not_a_crash():
    rng = np.random.default_rng(2)
    cases = [_cumsum_case(rng)]

    def boom(c):
        raise RuntimeError("kaboom")

    rep = run_cases("cumsum", cases,
                    lambda c: (_reference(c), safe_call(boom, (c,))), tolerance=(0, 0))
    assert not rep.passed and "RuntimeError: kaboom" in rep.problem
