"""V4 conjugate-gradient verifier (refpg.verify.cg, derivations/verify_trpo.md).

refpg's reference iterate is checked against scipy's CG and the exact solution; two
independent CGs (a textbook loop and scipy, tests/trpo_references.py) pass for every
battery seed; a float32 CG passes only at float32 precision; the peers' early stop is
reproduced by ``residual_tol``; a known bug is caught and shrunk to its smallest system.
"""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from refpg.verify import cg as vc
from refpg.verify.cg import verify_cg
from trpo_references import cg_scipy, cg_stale_Ap, cg_textbook


def test_cg_reference_against_scipy_and_exact_solution():
    rng = np.random.default_rng(0)
    A = vc._spd(rng, 8, 50.0)
    b = rng.standard_normal(8)
    runs = vc._cg_runs(A, b, 8, 0.0, 2.0 ** -52, 0, 2)
    x_scipy = cg_scipy(lambda v: A @ v, b, 8)
    # 8 iterations of CG in dimension 8 solve the system (exact arithmetic); kappa = 50
    np.testing.assert_allclose(runs[0], x_scipy, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(runs[0], np.linalg.solve(A, b), rtol=1e-9)


@given(st.integers(0, 2 ** 16))
@settings(max_examples=10, deadline=None)
def test_independent_cgs_pass_for_any_battery_seed(seed):
    for fn in (cg_textbook, cg_scipy):
        rep = verify_cg(fn, seed=seed)
        assert rep.passed, str(rep)


def test_float32_cg_passes_only_at_float32_precision():
    def cg32(Avp, b, n):
        b = b.astype(np.float32)
        x, r = np.zeros_like(b), b.copy()
        p, rr = r.copy(), r @ r
        for _ in range(n):
            Ap = Avp(p).astype(np.float32)
            al = rr / (p @ Ap)
            x, r = x + al * p, r - al * Ap
            rn = r @ r
            p, rr = r + rn / rr * p, rn
        return x
    assert verify_cg(cg32, precision="float32").passed
    assert not verify_cg(cg32).passed


def test_residual_tol_option_reproduces_the_peers_early_stop():
    def peer_cg(Avp, b, n):                   # baselines/common/cg.py: break if r.r < tol
        return cg_textbook(Avp, b, n, residual_tol=1e-10)
    assert verify_cg(peer_cg, residual_tol=1e-10).passed
    assert not verify_cg(peer_cg).passed        # stops early where the battery asks for n


def test_cg_shrinks_iterations_and_dimension():
    rep = verify_cg(cg_stale_Ap)                # alpha uses A p of the previous direction
    assert not rep.passed and rep.shrunk_from, str(rep)
    # the smallest system on which the bug shows: two iterations in two dimensions
    assert rep.inputs["n_iter"] == 2 and np.asarray(rep.inputs["b"]).size == 2, str(rep)
