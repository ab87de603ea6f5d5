"""Independent reference routes shared by the trust-region tests (tests/test_bugs_trpo.py,
tests/test_verify_trpo.py).

Not a test module (pytest collects ``test_*.py`` only). Everything here is written from the
mathematics with NumPy/SciPy alone and deliberately imports nothing from refpg: these are
the second routes that refpg's verifiers are compared with, so they must not share its code.
Log-probabilities are complex-safe (max taken on the real part) so that complex-step
derivatives (step ``H``) are exact to rounding (derivations/verify_trpo.md#bug-catalogue).
The one deliberately wrong routine, ``cg_stale_Ap``, is here only because both files use it.
"""
import numpy as np
import scipy.sparse.linalg as spla

__all__ = ["H", "log_softmax", "surrogate_vec", "complex_step_gradient", "kl_gradient",
           "dense_fisher", "cg_textbook", "cg_scipy", "cg_stale_Ap"]

H = 1e-30  # complex-step size: exact to rounding for analytic functions


def log_softmax(z):
    """Complex-safe log-softmax over the last axis (max taken on the real part)."""
    m = np.max(np.real(z), axis=-1, keepdims=True)
    return z - m - np.log(np.sum(np.exp(z - m), axis=-1, keepdims=True))


def surrogate_vec(logits, states, actions, adv, old):
    """Ratio-form surrogate mean_j exp(log pi(a_j|s_j) - old_j) A_j, vectorised (complex-safe)."""
    return np.mean(np.exp(log_softmax(logits)[states, actions] - old) * adv)


def complex_step_gradient(f):
    """dL/dlogits by the complex step of a complex-safe value function f(logits, s, a, A, old)."""
    def grad(logits, states, actions, adv, old):
        out = np.zeros(logits.shape)
        for idx in np.ndindex(*logits.shape):
            zc = logits.astype(complex)
            zc[idx] += 1j * H
            out[idx] = np.imag(f(zc, states, actions, adv, old)) / H
        return out
    return grad


def kl_gradient(z_old, states):
    """z -> grad_z mean_j KL(pi_old(.|s_j) || pi_z(.|s_j)) = mean_j (pi_z - pi_old) in row s_j."""
    p_old = np.exp(log_softmax(z_old))

    def g(z):
        p = np.exp(log_softmax(z))
        out = np.zeros(z.shape, dtype=complex)
        np.add.at(out, states, (p - p_old)[states] / len(states))
        return out
    return g


def dense_fisher(z, states):
    """Dense Fisher: Hessian of mean_j KL(pi_old || pi_z) at z_old, complex step of kl_gradient."""
    S, A = z.shape
    grad = kl_gradient(z, states)
    cols = [np.imag(grad(z + 1j * H * e.reshape(S, A))).ravel() / H for e in np.eye(S * A)]
    return np.array(cols).T


def cg_textbook(Avp, b, n_iter, *, beta=None, residual_tol=None):
    """n_iter textbook CG steps from x = 0 with Fletcher-Reeves beta = r_new.r_new / r_old.r_old.

    ``beta(rr_old, rr_new)`` replaces that beta and ``residual_tol`` breaks once r.r < tol
    (baselines' early stop): the known variants the CG tests build from this one loop.
    """
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    for _ in range(n_iter):
        Ap = Avp(p)
        alpha = rr / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
        rr_new = r @ r
        p = r + (rr_new / rr if beta is None else beta(rr, rr_new)) * p
        rr = rr_new
        if residual_tol is not None and rr < residual_tol:
            break
    return x


def cg_scipy(Avp, b, n_iter):
    """n_iter steps of scipy.sparse.linalg.cg from x = 0 with no early stop (rtol = atol = 0)."""
    A = spla.LinearOperator((b.size, b.size), matvec=Avp, dtype=float)
    x, _ = spla.cg(A, b, rtol=0.0, atol=0.0, maxiter=n_iter)
    return x


def cg_stale_Ap(Avp, b, n_iter):
    """KNOWN BUG (not a reference): alpha uses A p computed before p was updated."""
    x, r = np.zeros_like(b), b.copy()
    p, rr = r.copy(), r @ r
    Ap = Avp(p)
    for _ in range(n_iter):
        alpha = rr / (p @ Ap)
        x, r = x + alpha * p, r - alpha * Ap
        rr_new = r @ r
        Ap_next = Avp(p)                   # BUG: A p computed before p is updated
        p = r + (rr_new / rr) * p
        rr, Ap = rr_new, Ap_next
    return x
