"""The Fisher matrix, the natural gradient and the KL trust region, exactly (SCOPE N1, N2).

For a tabular-capable softmax policy on a finite MDP (derivations/natural.md):

    F(theta) = E_{s~d_pi, a~pi}[g g^T],  g = grad log pi(a|s)           (N1)
             = sum_s d_pi(s) J_s^T (diag pi_s - pi_s pi_s^T) J_s
    KL_mean(theta_old, theta) = sum_s d_old(s) KL(pi_old(.|s) || pi_theta(.|s))   (N2)
    KL_max(theta_old, theta)  = max_s KL(pi_old(.|s) || pi_theta(.|s))           (N3)
    Hess_theta KL_mean |_{theta = theta_old} = F(theta_old)                       (N4)
    natural gradient  = F^+ grad eta  (Moore-Penrose pseudo-inverse)              (N5)
    tabular softmax:  F^+ grad eta = A_pi / (1-gamma) - per-state mean           (N6)
    NPG step (N6):    pi_new(a|s) propto pi(a|s) exp(step A_pi(s,a) / (1-gamma)) (N7)

``d_pi`` is the NORMALISED discounted visitation (CONVENTIONS.md), so ``F`` is an
expectation and ``grad eta`` (with the unnormalised ``rho_pi``) carries the
``1/(1-gamma)`` that reappears in (N6).

Tabular softmax parameters have a null space: adding ``c_s`` to every logit of
state ``s`` changes nothing, so ``F`` is singular along those ``S`` directions;
``grad eta`` is orthogonal to them and the pseudo-inverse returns the
minimum-norm solution of ``F x = grad eta`` (derivations/natural.md#the-null-space-of-softmax-parameters).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .evaluation import check_policy_table, evaluate
from .mdp import FiniteMDP
from .policies.base import SoftmaxPolicy
from .policy_gradient import exact_policy_gradient, policy_table
from .validation import as_float_array, check_positive_float, check_positive_int, check_theta

__all__ = ["exact_fisher", "exact_fisher_vector_product", "kl_per_state", "kl_mean",
           "kl_max", "grad_kl_mean", "natural_gradient", "NaturalGradient",
           "natural_gradient_result", "tabular_softmax_null_space", "tabular_npg_direction",
           "tabular_npg_update", "TabularNPGResult", "tabular_npg",
           "LinearReparametrisedPolicy"]

#: default relative cut-off of the pseudo-inverse: eigenvalues of F below
#: ``rcond * max eigenvalue`` are treated as zero. The null-space eigenvalues of
#: a tabular softmax Fisher are rounding noise (~1e-17 relative); genuine
#: eigenvalues are ``~ d(s) pi(a|s)``, so 1e-10 keeps probabilities down to
#: about 1e-10 (derivations/natural.md#the-null-space-of-softmax-parameters).
DEFAULT_RCOND = 1e-10


def _states(mdp, policy):
    # policy_table validates the pair (tabular-capable SoftmaxPolicy of matching S, A)
    if not isinstance(mdp, FiniteMDP):
        raise TypeError(f"mdp must be a FiniteMDP; got {type(mdp).__name__}")
    return np.arange(mdp.n_states)


def exact_fisher(mdp, policy, theta):
    """Exact Fisher matrix ``F = E_{s~d_pi, a~pi}[g g^T]: (d, d)`` (N1).

    ``d_pi`` is the normalised discounted visitation of ``pi_theta``; the
    score ``g = grad log pi(a|s)`` comes from ``policy.grad_log_prob_table``.
    Complex-safe. derivations/natural.md#the-fisher-matrix
    """
    pi = policy_table(mdp, policy, theta)
    d = evaluate(mdp, pi).d
    G = policy.grad_log_prob_table(theta)                      # (S, A, d)
    return np.einsum("s,sa,sai,saj->ij", d, pi, G, G)


def exact_fisher_vector_product(mdp, policy, theta, v):
    """``F v: (d,)`` without forming ``F`` (N1), ``v: (d,)``.

    Uses the policy's matrix-free product (P4) with weights ``d_pi`` over all
    states; for complex ``theta`` or ``v`` it falls back to the score table.
    derivations/natural.md#the-fisher-matrix
    """
    pi = policy_table(mdp, policy, theta)
    v = check_theta(v, policy.n_params, name="v")
    d = evaluate(mdp, pi).d
    states = _states(mdp, policy)
    if not (np.iscomplexobj(d) or np.iscomplexobj(v) or np.iscomplexobj(theta)):
        return policy.fisher_vector_product(theta, v, states, weights=d)
    G = policy.grad_log_prob_table(theta)
    return np.einsum("s,sa,sai,sa->i", d, pi, G, G @ v)


def kl_per_state(mdp, policy, theta_old, theta_new):
    """``KL(pi_old(.|s) || pi_new(.|s))`` for every state: ``(S,)``. Complex-safe in ``theta_new``.

    derivations/natural.md#kl-divergences-between-policies
    """
    policy_table(mdp, policy, theta_old)
    return policy.kl(theta_old, theta_new, _states(mdp, policy))


def kl_mean(mdp, policy, theta_old, theta_new):
    """``KL_mean = sum_s d_old(s) KL(pi_old(.|s) || pi_new(.|s))`` (N2), ``s ~ d_pi_old``.

    ``d_old`` is the normalised discounted visitation of ``pi_theta_old``.
    Complex-safe in ``theta_new``. derivations/natural.md#kl-divergences-between-policies
    """
    d_old = evaluate(mdp, policy_table(mdp, policy, theta_old)).d
    return d_old @ kl_per_state(mdp, policy, theta_old, theta_new)


def grad_kl_mean(mdp, policy, theta_old, theta_new):
    """``grad_{theta_new} KL_mean = sum_s d_old(s) J_s^T (pi_new - pi_old): (d,)`` (N2, P2).

    derivations/natural.md#kl-divergences-between-policies
    """
    d_old = evaluate(mdp, policy_table(mdp, policy, theta_old)).d
    grads = policy.grad_kl(theta_old, theta_new, _states(mdp, policy))   # (S, d)
    return d_old @ grads


def kl_max(mdp, policy, theta_old, theta_new):
    """``KL_max = max_s KL(pi_old(.|s) || pi_new(.|s))`` over ALL states (N3).

    Every state counts, visited or not (Schulman et al. 2015, Thm 1). The
    maximum is selected on the real part and the selected entry returned, so a
    complex-step derivative gives the derivative of the active state's KL.
    derivations/natural.md#kl-divergences-between-policies
    """
    kl = kl_per_state(mdp, policy, theta_old, theta_new)
    return kl[int(np.argmax(np.real(kl)))]


def _check_rcond(rcond):
    rcond = float(rcond)
    if not (0.0 <= rcond < 1.0):
        raise ValueError(f"rcond must lie in [0, 1); got {rcond!r}")
    return rcond


def natural_gradient(mdp, policy, theta, *, rcond=DEFAULT_RCOND):
    """Natural gradient ``F^+ grad eta: (d,)`` (N5), the minimum-norm solution of ``F x = grad eta``.

    ``F`` is the exact Fisher (N1) and ``grad eta`` the exact policy gradient
    (PG1). Eigenvalues of ``F`` below ``rcond * max eigenvalue`` are treated as
    zero (the softmax null space). Real ``theta`` only.
    derivations/natural.md#the-natural-gradient
    """
    return natural_gradient_result(mdp, policy, theta, rcond=rcond).direction


@dataclass(frozen=True)
class NaturalGradient:
    """The natural gradient and what it was computed from (N5).

    ``direction = F^+ grad: (d,)``; ``fisher: (d, d)``; ``gradient: (d,)``;
    ``rank`` of ``F`` after the cut-off; ``residual = ||F direction - grad||``
    (zero up to rounding iff ``grad`` lies in the range of ``F``);
    ``null_component = ||P_null grad||``, the part of ``grad`` in the null
    space of ``F`` (zero for a softmax policy).
    derivations/natural.md#the-natural-gradient
    """

    direction: np.ndarray
    fisher: np.ndarray
    gradient: np.ndarray
    rank: int
    residual: float
    null_component: float


def natural_gradient_result(mdp, policy, theta, *, rcond=DEFAULT_RCOND):
    """``NaturalGradient`` record: ``F^+ grad eta`` with rank and residual (N5).

    The pseudo-inverse is taken through the eigendecomposition of the
    symmetric ``F``. derivations/natural.md#the-natural-gradient
    """
    rcond = _check_rcond(rcond)
    policy_table(mdp, policy, theta)          # validates mdp, policy, theta
    theta = policy.check_theta(theta)
    if np.iscomplexobj(theta):
        raise TypeError("natural_gradient needs a real theta (eigendecomposition)")
    F = exact_fisher(mdp, policy, theta)
    g = exact_policy_gradient(mdp, policy, theta)
    F = 0.5 * (F + F.T)
    w, U = np.linalg.eigh(F)
    keep = w > rcond * max(float(w[-1]), 0.0)
    if float(w[-1]) <= 0.0:
        keep[:] = False
    coef = U.T @ g
    x = U[:, keep] @ (coef[keep] / w[keep])
    return NaturalGradient(direction=x, fisher=F, gradient=g, rank=int(keep.sum()),
                           residual=float(np.linalg.norm(F @ x - g)),
                           null_component=float(np.linalg.norm(coef[~keep])))


def tabular_softmax_null_space(n_states, n_actions):
    """Orthonormal basis ``(S*A, S)`` of the directions that leave a tabular softmax unchanged.

    Column ``s`` is ``1/sqrt(A)`` on the logits of state ``s`` and zero
    elsewhere: ``softmax(z + c 1) = softmax(z)``. When every state has
    ``d_pi(s) > 0`` and every ``pi(a|s) > 0`` this is exactly the null space of
    ``F``. derivations/natural.md#the-null-space-of-softmax-parameters
    """
    S = check_positive_int("n_states", n_states)
    A = check_positive_int("n_actions", n_actions)
    N = np.zeros((S * A, S))
    for s in range(S):
        N[s * A:(s + 1) * A, s] = 1.0 / np.sqrt(A)
    return N


def tabular_npg_direction(mdp, pi):
    """Closed-form tabular softmax natural gradient ``A_pi / (1-gamma)`` centred per state: ``(S, A)`` (N6).

    ``pi: (S, A)``. Equals ``natural_gradient`` reshaped to ``(S, A)`` when
    every ``d_pi(s) > 0`` and ``pi(a|s) > 0`` (the minimum-norm representative
    has zero mean over actions in every state).
    derivations/natural.md#tabular-softmax-npg-in-closed-form
    """
    pi = check_policy_table(mdp, pi)
    if mdp.gamma >= 1.0:
        raise ValueError(f"tabular_npg_direction needs gamma < 1; got {mdp.gamma}")
    A = evaluate(mdp, pi).A / (1.0 - mdp.gamma)
    return A - A.mean(axis=1, keepdims=True)


def tabular_npg_update(mdp, pi, step):
    """One tabular softmax NPG step (N7): ``pi_new(a|s) propto pi(a|s) exp(step A_pi(s,a) / (1-gamma))``.

    ``pi: (S, A)`` -> ``(S, A)``. This is ``theta <- theta + step F^+ grad eta``
    for the tabular softmax (the per-state constant of (N6) cancels in the
    normalisation); stable for large steps (log-sum-exp).
    derivations/natural.md#tabular-softmax-npg-in-closed-form
    """
    pi = check_policy_table(mdp, pi)
    step = check_positive_float("step", step)
    if mdp.gamma >= 1.0:
        raise ValueError(f"tabular_npg_update needs gamma < 1; got {mdp.gamma}")
    A = evaluate(mdp, pi).A
    with np.errstate(divide="ignore"):
        logits = np.log(pi) + step * A / (1.0 - mdp.gamma)
    logits = logits - np.max(np.real(logits), axis=1, keepdims=True)   # complex-safe shift
    new = np.exp(logits)
    return new / new.sum(axis=1, keepdims=True)


@dataclass(frozen=True)
class TabularNPGResult:
    """Iterates of the closed-form tabular NPG (N7).

    ``policies: (T+1, S, A)`` with ``policies[0] = pi_0``; ``etas: (T+1,)``
    the exact ``eta`` of each; ``step``; ``n_iter = T``.
    derivations/natural.md#tabular-softmax-npg-in-closed-form
    """

    policies: np.ndarray
    etas: np.ndarray
    step: float
    n_iter: int


def tabular_npg(mdp, pi0, step, n_iter):
    """Run ``n_iter`` closed-form NPG steps (N7) from ``pi0: (S, A)``; returns ``TabularNPGResult``.

    With ``pi0`` uniform and rewards in ``[0, 1]``, Agarwal et al. (2021),
    Thm 16: ``V*(rho) - V_T(rho) <= log|A| / (step T) + 1 / ((1-gamma)^2 T)``.
    derivations/natural.md#tabular-softmax-npg-in-closed-form
    """
    pi = check_policy_table(mdp, pi0)
    if np.iscomplexobj(pi):
        raise TypeError("tabular_npg needs a real policy table")
    T = check_positive_int("n_iter", n_iter, minimum=0)
    pols = [np.array(pi, dtype=float)]
    for _ in range(T):
        pols.append(tabular_npg_update(mdp, pols[-1], step))
    etas = np.array([float(evaluate(mdp, p).eta) for p in pols])
    return TabularNPGResult(policies=np.stack(pols), etas=etas, step=float(step), n_iter=T)


class LinearReparametrisedPolicy(SoftmaxPolicy):
    """``pi_phi = base_{M phi}``: the same policy family under ``theta = M phi``, ``M: (d, d)`` invertible.

    Logits ``z(phi, s) = z_base(M phi, s)``, so ``J_phi = J_theta M``: vanilla
    gradients transform as ``M^T g`` and Fisher matrices as ``M^T F M``, and
    the natural step ``M dphi`` moves the policy exactly as the natural step
    ``dtheta`` does, while ``M M^T g`` differs from ``g``.
    derivations/natural.md#invariance-to-reparametrisation
    """

    def __init__(self, base, M):
        if not isinstance(base, SoftmaxPolicy):
            raise TypeError(f"base must be a SoftmaxPolicy; got {type(base).__name__}")
        M = as_float_array("M", M, ndim=2)
        d = base.n_params
        if M.shape != (d, d):
            raise ValueError(f"M must have shape (d, d) = ({d}, {d}); got {M.shape}")
        cond = np.linalg.cond(M)
        if not np.isfinite(cond) or cond > 1e12:
            raise ValueError(f"M must be invertible (condition number <= 1e12); got {cond:.3e}")
        self.base = base
        self.M = M
        self.n_params = d
        self.n_actions = base.n_actions
        self.n_states = base.n_states

    def __repr__(self):
        return f"LinearReparametrisedPolicy({self.base!r}, M: {self.M.shape})"

    def theta(self, phi):
        """``theta = M phi``. derivations/natural.md#invariance-to-reparametrisation"""
        return self.M @ self.check_theta(phi, "phi")

    def _check_obs(self, obs):
        return self.base._check_obs(obs)

    def _logits(self, phi, obs):
        return self.base._logits(self.M @ phi, obs)

    def _logits_jvp(self, phi, obs, v):
        return self.base._logits_jvp(self.M @ phi, obs, self.M @ v)

    def _logits_vjp(self, phi, obs, cot):
        return self.base._logits_vjp(self.M @ phi, obs, cot) @ self.M

    def _logits_vjp_sum(self, phi, obs, cot):
        return self.M.T @ self.base._logits_vjp_sum(self.M @ phi, obs, cot)
