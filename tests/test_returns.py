"""Returns, TD residuals, lambda-returns and GAE (refpg.returns, derivations/returns.md).

Independent route: a plain per-episode Python loop written here that splits each
row into episodes and evaluates the *explicit sums* (not the recursions):

    G_t   = sum_{k=t}^{e} gamma^(k-t) r_k + gamma^(e+1-t) V(s_{e+1}) [bootstrap]
    A_t   = sum_{k=t}^{e} (gamma lam)^(k-t) delta_k
    G^lam = (1-lam) sum_{n=1}^{L-1} lam^(n-1) G^(n)_t + lam^(L-1) G^(L)_t     (Sutton & Barto 12.3)

Tolerances: the library sums by a recursion (or a scan), the reference by
powers; both are float64 sums of at most T terms, so they agree to a few
hundred ulps of the largest partial sum: ``atol = 1e-13 * scale`` with
``scale`` the largest |term sum| (the brief's 1e-13 relative).
"""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numpy.testing import assert_allclose, assert_array_equal

from refpg.returns import (GAE, episode_returns, gae, lambda_returns, linear_recurrence,
                           reward_to_go, td_residuals)


# ----------------------------------------------------------------------- fixtures
def make_buffer(seed, N, T, *, p_term=0.2, p_trunc=0.1, padded=False):
    """Random rows with episodes back to back (or one episode + padding when ``padded``);
    next_values consistent with values inside episodes."""
    rng = np.random.default_rng(seed)
    u = rng.random((N, T))
    term = u < p_term
    trunc = (u >= p_term) & (u < p_term + p_trunc)
    mask = np.ones((N, T), bool)
    if padded:
        lengths = rng.integers(0, T + 1, N)
        mask = np.arange(T)[None, :] < lengths[:, None]
        term &= mask
        trunc &= mask
        # one episode per row: keep only the flag of the last valid step (if any)
        last = np.maximum(lengths - 1, 0)
        keep = np.zeros((N, T), bool)
        keep[np.arange(N), last] = True
        term &= keep
        trunc &= keep
    rewards = rng.uniform(-5, 5, (N, T))
    values = rng.uniform(-5, 5, (N, T))
    next_values = np.empty((N, T))
    next_values[:, :-1] = values[:, 1:]
    ends = term | trunc | ~np.concatenate([mask[:, 1:], np.zeros((N, 1), bool)], axis=1)
    next_values[ends] = rng.uniform(-5, 5, int(ends.sum()))   # value of the final obs
    next_values[:, -1] = rng.uniform(-5, 5, N)
    return rewards, values, next_values, term, trunc, mask


def episodes(term, trunc, mask):
    """(row, start, end, kind) with kind in {'terminated', 'truncated', 'cut'}."""
    N, T = mask.shape
    out = []
    for i in range(N):
        start = None
        for t in range(T):
            if not mask[i, t]:
                if start is not None:
                    out.append((i, start, t - 1, "cut"))
                    start = None
                continue
            if start is None:
                start = t
            if term[i, t] or trunc[i, t]:
                out.append((i, start, t, "terminated" if term[i, t] else "truncated"))
                start = None
        if start is not None:
            out.append((i, start, T - 1, "cut"))
    return out


def reference(rewards, values, next_values, term, trunc, mask, gamma, lam, bootstrap=True):
    """Explicit per-episode sums; returns (rtg, delta, adv, lam_ret, scale)."""
    N, T = rewards.shape
    rtg, delta, adv, lret = (np.zeros((N, T)) for _ in range(4))
    scale = 0.0
    for i, s, e, kind in episodes(term, trunc, mask):
        boot = bootstrap and kind != "terminated"
        for k in range(s, e + 1):
            v_next = 0.0 if term[i, k] else next_values[i, k]
            delta[i, k] = rewards[i, k] + gamma * v_next - values[i, k]
        for t in range(s, e + 1):
            terms = [gamma ** (k - t) * rewards[i, k] for k in range(t, e + 1)]
            if boot:
                terms.append(gamma ** (e + 1 - t) * next_values[i, e])
            rtg[i, t] = sum(terms)
            a_terms = [(gamma * lam) ** (k - t) * delta[i, k] for k in range(t, e + 1)]
            adv[i, t] = sum(a_terms)
            L = e - t + 1
            nstep = []
            for n in range(1, L + 1):
                g = sum(gamma ** (k - t) * rewards[i, k] for k in range(t, t + n))
                if n < L:
                    g += gamma ** n * next_values[i, t + n - 1]
                elif kind != "terminated":
                    g += gamma ** n * next_values[i, e]
                nstep.append(g)
            lret[i, t] = (1 - lam) * sum(lam ** (n - 1) * nstep[n - 1] for n in range(1, L)) \
                + lam ** (L - 1) * nstep[L - 1]
            scale = max(scale, sum(abs(x) for x in terms), sum(abs(x) for x in a_terms),
                        max(abs(x) for x in nstep))
    return rtg, delta, adv, lret, max(scale, 1.0)


buffers = st.builds(
    make_buffer, seed=st.integers(0, 2**32 - 1), N=st.integers(1, 4), T=st.integers(1, 12),
    p_term=st.sampled_from([0.0, 0.1, 0.3]), p_trunc=st.sampled_from([0.0, 0.1, 0.3]),
    padded=st.booleans())
gammas = st.sampled_from([0.0, 0.5, 0.9, 0.99, 1.0])
lams = st.sampled_from([0.0, 0.3, 0.95, 1.0])
methods = st.sampled_from(["chunked", "scan", "loop"])


# ------------------------------------------------------ against the explicit sums
@settings(max_examples=60)
@given(buf=buffers, gamma=gammas, lam=lams, method=methods)
def test_everything_equals_the_per_episode_explicit_sums(buf, gamma, lam, method):
    r, v, nv, term, trunc, mask = buf
    rtg, delta, adv, lret, scale = reference(r, v, nv, term, trunc, mask, gamma, lam)
    flags = dict(terminated=term, truncated=trunc, mask=mask)
    tol = 1e-13 * scale   # see module docstring
    assert_allclose(td_residuals(r, v, nv, gamma, terminated=term, mask=mask), delta,
                    rtol=0, atol=tol)
    assert_allclose(reward_to_go(r, gamma, next_values=nv, method=method, **flags), rtg,
                    rtol=0, atol=tol)
    res = gae(r, v, nv, gamma, lam, method=method, **flags)
    assert_allclose(res.advantages, adv, rtol=0, atol=tol)
    assert_allclose(res.returns, np.where(mask, adv + v, 0.0), rtol=0, atol=tol)
    assert_allclose(lambda_returns(r, nv, gamma, lam, method=method, **flags), lret,
                    rtol=0, atol=tol)


@settings(max_examples=30)
@given(buf=buffers, gamma=gammas)
def test_reward_to_go_without_next_values_does_not_bootstrap(buf, gamma):
    r, v, nv, term, trunc, mask = buf
    rtg, *_ = reference(r, v, nv, term, trunc, mask, gamma, 1.0, bootstrap=False)
    got = reward_to_go(r, gamma, terminated=term, truncated=trunc, mask=mask)
    assert_allclose(got, rtg, rtol=0, atol=1e-13 * max(1.0, np.abs(rtg).max()) * r.shape[1])


# --------------------------------------------------------------------- identities
@settings(max_examples=40)
@given(buf=buffers, gamma=gammas, method=methods)
def test_gae_lambda_one_is_bootstrapped_return_minus_value(buf, gamma, method):
    r, v, nv, term, trunc, mask = buf
    flags = dict(terminated=term, truncated=trunc, mask=mask)
    A = gae(r, v, nv, gamma, 1.0, method=method, **flags).advantages
    G = reward_to_go(r, gamma, next_values=nv, method=method, **flags)
    scale = max(1.0, np.abs(G).max(), np.abs(v).max())
    # two different summations of the same T terms: agree to ~T ulps of the scale
    assert_allclose(A, np.where(mask, G - v, 0.0), rtol=0, atol=1e-13 * scale)


@settings(max_examples=40)
@given(buf=buffers, gamma=gammas, method=methods)
def test_gae_lambda_zero_is_the_td_residual_exactly(buf, gamma, method):
    r, v, nv, term, trunc, mask = buf
    A = gae(r, v, nv, gamma, 0.0, terminated=term, truncated=trunc, mask=mask,
            method=method).advantages
    # lam = 0: every coefficient is 0, A_t = delta_t + 0 * A_{t+1}: bit-identical
    assert_array_equal(A, td_residuals(r, v, nv, gamma, terminated=term, mask=mask))


@settings(max_examples=40)
@given(buf=buffers, gamma=gammas, lam=lams, method=methods)
def test_lambda_returns_equal_gae_plus_values(buf, gamma, lam, method):
    r, v, nv, term, trunc, mask = buf
    flags = dict(terminated=term, truncated=trunc, mask=mask)
    G = lambda_returns(r, nv, gamma, lam, method=method, **flags)
    res = gae(r, v, nv, gamma, lam, method=method, **flags)
    scale = max(1.0, np.abs(G).max(), np.abs(v).max())
    # different recursions (on r and V' versus on delta): ~T ulps of the scale
    assert_allclose(G, res.returns, rtol=0, atol=1e-13 * scale)


@settings(max_examples=40)
@given(buf=buffers, gamma=gammas, lam=lams)
def test_scan_and_chunked_equal_loop(buf, gamma, lam):
    r, v, nv, term, trunc, mask = buf
    flags = dict(terminated=term, truncated=trunc, mask=mask)
    b = gae(r, v, nv, gamma, lam, method="loop", **flags).advantages
    for method in ("scan", "chunked"):
        a = gae(r, v, nv, gamma, lam, method=method, **flags).advantages
        assert_allclose(a, b, rtol=0, atol=1e-13 * max(1.0, np.abs(b).max()))


@settings(max_examples=25)
@given(seed=st.integers(0, 2**32 - 1), N=st.integers(1, 3), T=st.integers(13, 50),
       padded=st.booleans(), time_major=st.booleans(), gamma=gammas, lam=lams)
def test_chunked_blocks_equal_the_explicit_sums(seed, N, T, padded, time_major, gamma, lam):
    """The chunked solver's three stages (16-step blocks, the scan over block starts,
    and the leading T mod 16 columns by the loop) only run when T > 16, beyond the
    short buffers above: checked here against the explicit sums, T = 13..50."""
    r, v, nv, term, trunc, mask = make_buffer(seed, N, T, padded=padded)
    rtg, _, adv, lret, scale = reference(r, v, nv, term, trunc, mask, gamma, lam)
    arrays, f = (r, v, nv), dict(terminated=term, truncated=trunc, mask=mask)
    if time_major:
        arrays = tuple(np.ascontiguousarray(a.T) for a in arrays)
        f = {k: np.ascontiguousarray(a.T) for k, a in f.items()}
    rr, vv, nn = arrays
    kw = dict(method="chunked", time_major=time_major, **f)
    out = lambda a: a.T if time_major else a                       # noqa: E731
    tol = 1e-13 * scale   # see module docstring
    assert_allclose(out(reward_to_go(rr, gamma, next_values=nn, **kw)), rtg, rtol=0, atol=tol)
    assert_allclose(out(gae(rr, vv, nn, gamma, lam, **kw).advantages), adv, rtol=0, atol=tol)
    assert_allclose(out(lambda_returns(rr, nn, gamma, lam, **kw)), lret, rtol=0, atol=tol)

def test_scan_rounding_error_on_a_long_buffer():
    """The scan sums each y_t as a balanced tree: error O(log2 T eps), measured here
    against the loop (sequential) on T = 4096 with gamma lam = 0.999."""
    r, v, nv, term, trunc, mask = make_buffer(7, 8, 4096, p_term=0.001, p_trunc=0.0)
    flags = dict(terminated=term, truncated=trunc)
    b = gae(r, v, nv, 0.9999, 0.999, method="loop", **flags).advantages
    for method in ("scan", "chunked"):
        a = gae(r, v, nv, 0.9999, 0.999, method=method, **flags).advantages
        assert_allclose(a, b, rtol=0, atol=1e-13 * np.abs(b).max())


# -------------------------------------------------------------- flags and leakage
def test_truncated_bootstraps_and_terminated_does_not():
    r = np.array([[1.0, 2.0, 3.0, 4.0]])
    v = np.array([[0.5, 0.25, 0.125, 1.0]])
    nv = np.array([[0.25, 7.0, 1.0, 11.0]])
    term = np.array([[False, True, False, False]])
    trunc = np.array([[False, False, False, True]])
    g = 0.5
    base = gae(r, v, nv, g, 1.0, terminated=term, truncated=trunc)
    # hand computation (episode 1: steps 0-1 terminated; episode 2: steps 2-3 truncated)
    G = np.array([1.0 + g * 2.0, 2.0, 3.0 + g * 4.0 + g * g * 11.0, 4.0 + g * 11.0])
    assert_allclose(base.advantages[0], G - v[0], rtol=1e-15, atol=1e-15)
    # the value of the terminal observation is never used
    nv2 = nv.copy()
    nv2[0, 1] = 1e6
    assert_array_equal(gae(r, v, nv2, g, 1.0, terminated=term, truncated=trunc).advantages,
                       base.advantages)
    # the value reached at truncation enters with weight gamma^(k) in its episode only
    nv3 = nv.copy()
    nv3[0, 3] += 1.0
    diff = gae(r, v, nv3, g, 1.0, terminated=term, truncated=trunc).advantages - base.advantages
    assert_allclose(diff[0], [0.0, 0.0, g * g, g], rtol=1e-15, atol=1e-15)


def test_buffer_end_cut_bootstraps_like_truncation():
    r, v, nv, term, trunc, mask = make_buffer(3, 3, 9, p_term=0.0, p_trunc=0.0)
    a = gae(r, v, nv, 0.9, 0.8).advantages
    trunc_last = np.zeros_like(trunc)
    trunc_last[:, -1] = True
    b = gae(r, v, nv, 0.9, 0.8, truncated=trunc_last).advantages
    assert_array_equal(a, b)


@settings(max_examples=40)
@given(buf=buffers, gamma=gammas, lam=lams, data=st.data())
def test_reward_never_leaks_across_an_episode_boundary(buf, gamma, lam, data):
    r, v, nv, term, trunc, mask = buf
    eps = episodes(term, trunc, mask)
    if not eps:
        return
    i, s, e, _ = data.draw(st.sampled_from(eps))
    r2 = r.copy()
    r2[i, s:e + 1] += 1.0 + np.arange(e + 1 - s)
    inside = np.zeros_like(mask)
    inside[i, s:e + 1] = True
    flags = dict(terminated=term, truncated=trunc, mask=mask)
    for f in (lambda rr: reward_to_go(rr, gamma, next_values=nv, **flags),
              lambda rr: gae(rr, v, nv, gamma, lam, **flags).advantages,
              lambda rr: lambda_returns(rr, nv, gamma, lam, **flags),
              lambda rr: td_residuals(rr, v, nv, gamma, terminated=term, mask=mask)):
        before, after = f(r), f(r2)
        assert_array_equal(after[~inside], before[~inside])
        assert np.all(after[i, e] != before[i, e])   # the last step always sees its reward


def test_padding_outputs_zero_and_ignores_padding_rewards():
    r, v, nv, term, trunc, mask = make_buffer(5, 4, 8, padded=True)
    r2 = np.where(mask, r, 123.0)
    flags = dict(terminated=term, truncated=trunc, mask=mask)
    a = gae(r, v, nv, 0.9, 0.9, **flags)
    b = gae(r2, v, nv, 0.9, 0.9, **flags)
    assert_array_equal(a.advantages, b.advantages)
    assert_array_equal(a.advantages[~mask], 0.0)
    assert_array_equal(a.returns[~mask], 0.0)
    assert_array_equal(reward_to_go(r2, 0.9, **flags)[~mask], 0.0)


@settings(max_examples=30)
@given(buf=buffers, gamma=gammas, lam=lams, method=methods)
def test_time_major_inputs_give_the_transposed_result(buf, gamma, lam, method):
    """(T, N) inputs with time_major=True: the same arithmetic in the same order on
    another memory layout, so the result is bit-identical to the batch-major one."""
    r, v, nv, term, trunc, mask = buf
    f = dict(terminated=term, truncated=trunc, mask=mask)
    fT = {k: np.ascontiguousarray(a.T) for k, a in f.items()}   # a real (T, N) buffer
    rT, vT, nvT = (np.ascontiguousarray(a.T) for a in (r, v, nv))
    a = gae(r, v, nv, gamma, lam, method=method, **f)
    b = gae(rT, vT, nvT, gamma, lam, method=method, time_major=True, **fT)
    assert_array_equal(b.advantages, a.advantages.T)
    assert_array_equal(b.returns, a.returns.T)
    assert_array_equal(reward_to_go(rT, gamma, next_values=nvT, method=method,
                                    time_major=True, **fT),
                       reward_to_go(r, gamma, next_values=nv, method=method, **f).T)
    assert_array_equal(lambda_returns(rT, nvT, gamma, lam, method=method, time_major=True,
                                      **fT),
                       lambda_returns(r, nv, gamma, lam, method=method, **f).T)
    assert_array_equal(td_residuals(rT, vT, nvT, gamma, terminated=fT["terminated"],
                                    mask=fT["mask"], time_major=True),
                       td_residuals(r, v, nv, gamma, terminated=term, mask=mask).T)


# ------------------------------------------------------------------- edge cases
def test_gamma_zero_and_one():
    r, v, nv, term, trunc, mask = make_buffer(11, 3, 10)
    flags = dict(terminated=term, truncated=trunc, mask=mask)
    assert_array_equal(reward_to_go(r, 0.0, next_values=nv, **flags), r)
    assert_array_equal(gae(r, v, nv, 0.0, 0.7, **flags).advantages, r - v)
    G1 = reward_to_go(r, 1.0, **flags)
    for i, s, e, _ in episodes(term, trunc, mask):
        # gamma = 1: an undiscounted suffix sum (cumsum from the end of the episode)
        assert_allclose(G1[i, s:e + 1], np.cumsum(r[i, s:e + 1][::-1])[::-1],
                        rtol=1e-13, atol=1e-13 * np.abs(r).sum())


def test_one_episode_per_row_legacy_signature():
    rng = np.random.default_rng(2)
    r = rng.standard_normal((5, 7))
    lengths = np.array([7, 0, 3, 1, 5])
    mask = np.arange(7)[None, :] < lengths[:, None]
    G = reward_to_go(r, 0.8, mask=mask)
    R = episode_returns(r, 0.8, mask=mask)
    for i, n in enumerate(lengths):
        want = [sum(0.8 ** (k - t) * r[i, k] for k in range(t, n)) for t in range(n)]
        assert_allclose(G[i, :n], want, rtol=1e-13, atol=1e-14)
        assert_allclose(R[i], want[0] if n else 0.0, rtol=1e-13, atol=1e-14)
    assert_array_equal(G[~mask], 0.0)


def test_outputs_are_float64_for_float32_inputs():
    r, v, nv, term, trunc, mask = make_buffer(1, 2, 6)
    res = gae(r.astype(np.float32), v.astype(np.float32), nv.astype(np.float32), 0.9, 0.9,
              terminated=term)
    assert isinstance(res, GAE) and res.advantages.dtype == np.float64
    assert res.returns.dtype == np.float64
    assert reward_to_go(r.astype(np.float32), 0.9).dtype == np.float64


def test_complex_inputs_flow_through_linearly():
    """Complex step: every output is linear in (rewards, values, next_values), so the
    imaginary part is the same function of the imaginary parts (exact)."""
    r, v, nv, term, trunc, mask = make_buffer(4, 3, 9)
    rng = np.random.default_rng(0)
    dv = rng.standard_normal(v.shape)
    flags = dict(terminated=term, truncated=trunc)
    z = gae(r, v + 1j * dv, nv, 0.9, 0.8, **flags).advantages
    assert_allclose(z.imag, gae(np.zeros_like(r), dv, np.zeros_like(nv), 0.9, 0.8,
                                **flags).advantages, rtol=1e-14, atol=1e-14)


# ------------------------------------------------------------------- bad input
@pytest.mark.parametrize("call, match", [
    (lambda r, v, nv, t: gae(r, v[:, :-1], nv, 0.9, 0.9), "values"),
    (lambda r, v, nv, t: gae(r, v, nv[:1], 0.9, 0.9), "next_values"),
    (lambda r, v, nv, t: gae(np.where(t, np.nan, r), v, nv, 0.9, 0.9), "rewards"),
    (lambda r, v, nv, t: gae(r, v, nv, 1.5, 0.9), "gamma"),
    (lambda r, v, nv, t: gae(r, v, nv, 0.9, -0.1), "lam"),
    (lambda r, v, nv, t: gae(r, v, nv, 0.9, 0.9, terminated=t, truncated=t), "exclusive"),
    (lambda r, v, nv, t: gae(r, v, nv, 0.9, 0.9, terminated=t * 0.5), "terminated"),
    (lambda r, v, nv, t: gae(r, v, nv, 0.9, 0.9, truncated=t[:, :2]), "truncated"),
    (lambda r, v, nv, t: gae(r, v, nv, 0.9, 0.9, terminated=t, mask=~t), "padding"),
    (lambda r, v, nv, t: gae(r, v, nv, 0.9, 0.9, method="fast"), "method"),
    (lambda r, v, nv, t: lambda_returns(r, None, 0.9, 0.9), "next_values"),
    (lambda r, v, nv, t: reward_to_go(r[0], 0.9), "rewards"),
    (lambda r, v, nv, t: td_residuals(r, v, np.full_like(nv, np.inf), 0.9), "next_values"),
])
def test_bad_input_raises_value_error_naming_the_field(call, match):
    r, v, nv, term, trunc, mask = make_buffer(0, 2, 5)
    t = np.zeros((2, 5), bool)
    t[:, 2] = True
    with pytest.raises(ValueError, match=match):
        call(r, v, nv, t)


# ------------------------------------------- non-finite inputs (checked lazily)
@settings(max_examples=40)
@given(data=st.data(), method=methods, padded=st.booleans(),
       time_major=st.booleans(), bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_a_non_finite_entry_anywhere_is_reported_by_name(data, method, padded, time_major,
                                                         bad):
    """The inputs are scanned for NaN/inf only when the result is not finite
    (refpg.returns._check_finite); this checks the claim that makes that sound:
    a non-finite entry in ANY cell (padding, terminated steps, cells whose weight
    is 0, gamma = 0) always reaches the result, so it is always reported, by name."""
    N = data.draw(st.integers(1, 4), label="N")
    T = data.draw(st.integers(1, 40), label="T")
    r, v, nv, term, trunc, mask = make_buffer(data.draw(st.integers(0, 99)), N, T,
                                              padded=padded)
    gamma = data.draw(st.sampled_from([0.0, 0.9, 1.0]), label="gamma")
    lam = data.draw(st.sampled_from([0.0, 0.7, 1.0]), label="lam")
    which = data.draw(st.sampled_from(["rewards", "values", "next_values"]), label="which")
    i, t = data.draw(st.integers(0, N - 1)), data.draw(st.integers(0, T - 1))
    arrays = dict(rewards=r, values=v, next_values=nv)
    arrays[which] = arrays[which].copy()
    arrays[which][i, t] = bad
    r, v, nv = arrays["rewards"], arrays["values"], arrays["next_values"]
    f = dict(terminated=term, truncated=trunc, mask=mask if padded else None)
    if time_major:
        r, v, nv = r.T, v.T, nv.T
        f = {k: None if a is None else a.T for k, a in f.items()}
    kw = dict(method=method, time_major=time_major, **f)
    with pytest.raises(ValueError, match=which):
        gae(r, v, nv, gamma, lam, **kw)
    if which != "values":
        with pytest.raises(ValueError, match=which):
            reward_to_go(r, gamma, next_values=nv, **kw)
        with pytest.raises(ValueError, match=which):
            lambda_returns(r, nv, gamma, lam, **kw)


def test_finite_inputs_that_overflow_are_returned_as_computed():
    """A result that overflows from finite inputs is not an input error: it is
    returned as the plain recursion would give it (inf), not raised."""
    r = np.full((1, 3), 1e308)
    with pytest.warns(RuntimeWarning, match="overflowed"):
        G = reward_to_go(r, 1.0)
    assert np.isinf(G[0, 0]) and G[0, 2] == 1e308


# --------------------------------------------------------------------------- session-4 audit
def test_lambda_returns_with_lam_one_are_the_bootstrapped_reward_to_go_bit_for_bit():
    # (R4) weights V(s_{t+1}) by gamma (1 - lam) inside an episode: exactly 0 at lam = 1.
    # Written as gamma V - gamma lam V it cancels, with an error relative to |V|, not to
    # the result: here V = 1e17 next to rewards of 1 (the audit's case) gave [1, 1] for [2, 1]
    assert_array_equal(lambda_returns([[1.0, 1.0]], [[1e17, 0.0]], 1.0, 1.0,
                                      terminated=[[False, True]]), [[2.0, 1.0]])
    rng = np.random.default_rng(3)
    r, nv = rng.standard_normal((5, 40)), 1e6 * rng.standard_normal((5, 40))
    term, trunc = rng.random((5, 40)) < 0.05, np.zeros((5, 40), bool)
    trunc[:, 20] = ~term[:, 20]
    for method in ("loop", "scan", "chunked"):
        a = lambda_returns(r, nv, 0.99, 1.0, terminated=term, truncated=trunc, method=method)
        b = reward_to_go(r, 0.99, terminated=term, truncated=trunc, next_values=nv,
                         method=method)
        assert_array_equal(a, b)            # the same x and c, hence the same arithmetic


def test_empty_time_axis_without_a_mask():
    z = np.zeros((2, 0))
    for out in (reward_to_go(z, 0.9), td_residuals(z, z, z, 0.9), lambda_returns(z, z, 0.9, 0.5),
                gae(z, z, z, 0.9, 0.5).advantages, linear_recurrence(z, z)):
        assert out.shape == (2, 0)
    with pytest.raises(ValueError, match="method"):
        reward_to_go(z, 0.9, method="nonsense")
    with pytest.raises(ValueError, match="method"):
        linear_recurrence(z, z, method="nonsense")


def test_gae_returns_that_overflow_from_finite_inputs_warn():
    # advantages finite (1e308), returns = advantages + values = 2e308: overflow, so a
    # RuntimeWarning (the docs' promise for results that overflow from finite inputs)
    with pytest.warns(RuntimeWarning, match="overflowed"):
        out = gae([[1e308]], [[1e308]], [[1e308]], 1.0, 1.0)
    assert np.isfinite(out.advantages).all() and not np.isfinite(out.returns).all()


def test_time_major_errors_give_the_callers_coordinates():
    r = np.ones((5, 3))                      # (T, N) = (5, 3)
    bad = r.copy()
    bad[4, 0] = np.nan
    with pytest.raises(ValueError, match=r"rewards.*\(4, 0\)"):
        reward_to_go(bad, 0.9, time_major=True)
    with pytest.raises(ValueError, match=r"next_values.*\(4, 0\)"):
        gae(r, r, bad, 0.9, 0.9, time_major=True)
    with pytest.raises(ValueError, match=r"values.*\(4, 0\)"):
        td_residuals(r, bad, r, 0.9, time_major=True)
    both = np.zeros((5, 3), bool)
    both[3, 1] = True
    with pytest.raises(ValueError, match=r"both are set at \(3, 1\)"):
        reward_to_go(r, 0.9, terminated=both, truncated=both, time_major=True)
    with pytest.raises(ValueError, match=r"\(T, N\) = \(5, 3\); got \(4, 3\)"):
        gae(r, r, np.ones((4, 3)), 0.9, 0.9, time_major=True)
    with pytest.raises(ValueError, match=r"terminated must have shape \(T, N\) = \(5, 3\)"):
        reward_to_go(r, 0.9, terminated=np.zeros((3, 5), bool), time_major=True)


def test_episode_returns_need_one_episode_per_row_from_t_zero():
    with pytest.raises(ValueError, match="row 0"):
        episode_returns([[9.0, 1.0, 1.0]], 0.5, mask=[[False, True, True]])
    with pytest.raises(TypeError, match="gamma"):
        episode_returns([[1.0]], True)
    assert_allclose(episode_returns([[1.0, 2.0, 7.0]], 0.5, mask=[[True, True, False]]), [2.0])
