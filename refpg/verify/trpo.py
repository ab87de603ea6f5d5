"""V2 trust-region verifiers: the surrogate and Fisher-vector products.

Each ``verify_*`` runs the user's callable and refpg's reference on a battery
of designed cases (a single state, single visits, unvisited states, logits of
magnitude 30, near-deterministic policies, zero advantages, steps the line
search must shorten or reject, a step whose naive evaluation overflows) plus
seeded random cases, and returns a ``VerifyReport`` with the first failure
shrunk to a small counterexample (fewer samples, fewer states, fewer actions,
simpler numbers). The user's function never crashes the verifier.

Tolerances (derivations/verify_trpo.md#tolerances): direct formulas use the
forward error bound ``16 eps (n_ops) sum |terms|`` per entry; iterative ones
(CG, the TRPO step) are compared within ``floor + 10 x`` the spread of refpg's
own result under Monte-Carlo rounding (every product and value perturbed by a
relative ``eps``), and a line-search decision within rounding of its boundary
admits both outcomes. ``precision="float32"`` uses float32's ``eps``.

A PyTorch user wraps their function: inputs are NumPy arrays (convert with
``torch.as_tensor``); outputs may be tensors (``.detach().cpu().numpy()`` is
applied). derivations/verify_trpo.md#calling-conventions
"""
from __future__ import annotations

import numpy as np

from ..distributions import log_softmax
from ..policies.gaussian import LinearGaussianPolicy
from ..policies.tabular import TabularSoftmaxPolicy
from ..surrogate import SampledSurrogate
from ..validation import check_positive_int
from .core import Case, safe_call

from .vectors import vector
from ._trpo_common import (_EPS, _choice, _direct, _eps, _pick, _random_tabular, _run,
                           _tab_size, _tabular_candidates, _up)

__all__ = ["verify_surrogate", "verify_surrogate_gradient", "verify_fvp", "verify_gaussian_fvp",
           "golden_surrogate", "golden_fvp", "golden_gaussian_fvp"]


def _surrogate(x, sign, form):
    """Value, gradient (S, A), operation count and magnitudes (sum of |terms|).

    Ratio form: refpg.surrogate.SampledSurrogate with one unit per sample, unit
    coefficients and ``log_q = old_log_probs`` (S4); log-prob form: the same
    gradient with ratios 1."""
    z = np.asarray(x["logits"], dtype=float)
    st, ac = np.asarray(x["states"]), np.asarray(x["actions"])
    adv, old = np.asarray(x["advantages"], float), np.asarray(x["old_log_probs"], float)
    S, A = z.shape
    M = st.size
    logp_all = log_softmax(z)
    logp = logp_all[st, ac]
    pi = np.exp(logp_all[st])
    onehot = np.zeros((M, A))
    onehot[np.arange(M), ac] = 1.0
    if form == "ratio":
        sur = SampledSurrogate(policy=TabularSoftmaxPolicy(S, A), theta_old=z.ravel(),
                               states=st, actions=ac, log_q=old, q_values=adv, coef=np.ones(M),
                               unit=np.arange(M), n_units=M, kl_states=st,
                               kl_sample_weights=np.full(M, 1.0 / M))
        value = float(sur.value(z.ravel()))
        grad = np.asarray(sur.gradient(z.ravel())).reshape(S, A)
        coef = np.exp(logp - old) * adv / M
        vmag = float(np.sum(np.abs(coef)))
    else:
        value = float(np.mean(logp * adv))
        coef = adv / M
        grad = np.zeros((S, A))
        np.add.at(grad, st, coef[:, None] * (onehot - pi))
        vmag = float(np.sum(np.abs(adv) * (np.abs(logp) + 1)) / M)
    gmag = np.zeros((S, A))
    np.add.at(gmag, st, np.abs(coef)[:, None] * (onehot + pi))
    ops = M + A + 4 + float(np.max(np.abs(z))) + (float(np.max(np.abs(old))) if M else 0.0)
    return sign * value, sign * grad, ops, vmag, gmag


def _surrogate_cases(seed, n_random):
    rng = np.random.default_rng(seed)
    cases = []

    def add(name, z, st, ac, adv, old):
        cases.append(Case(name, dict(logits=np.asarray(z, float), states=np.asarray(st),
                                     actions=np.asarray(ac), advantages=np.asarray(adv, float),
                                     old_log_probs=np.asarray(old, float)),
                          row_fields=("states", "actions", "advantages", "old_log_probs")))

    def consistent(z, st, ac, jitter=0.0):
        old = log_softmax(np.asarray(z, float))[st, ac]
        return old + jitter * rng.standard_normal(len(st))

    z = np.array([[0.3, -0.2]])
    add("tiny_one_state", z, [0], [1], [1.5], consistent(z, [0], [1], 0.3))
    z, st, ac = _random_tabular(rng, 5, 3, 5)
    st = np.arange(5)
    add("single_visits", z, st, ac, rng.standard_normal(5), consistent(z, st, ac, 0.5))
    z = 30.0 + rng.standard_normal((3, 4))
    z[1] *= -1.0
    st, ac = rng.integers(0, 3, 12), rng.integers(0, 4, 12)
    add("logits_magnitude_30", z, st, ac, rng.standard_normal(12), consistent(z, st, ac, 0.2))
    z = np.array([[15.0, 0.0, -3.0], [0.0, 14.0, 1.0]])
    st, ac = np.array([0, 0, 0, 1, 1, 0]), np.array([0, 1, 0, 1, 2, 2])
    add("near_deterministic", z, st, ac, rng.standard_normal(6), consistent(z, st, ac, 0.1))
    z, st, ac = _random_tabular(rng, 4, 3, 10)
    add("zero_advantages", z, st, ac, np.zeros(10), consistent(z, st, ac, 0.4))
    z, st, ac = _random_tabular(rng, 4, 3, 10)
    add("ratio_equal_one", z, st, ac, rng.standard_normal(10), consistent(z, st, ac))
    z, st, ac = _random_tabular(rng, 3, 5, 16)
    add("ratios_far_from_one", z, st, ac, 100.0 * rng.standard_normal(16),
        consistent(z, st, ac, 2.0))
    z, st, ac = _random_tabular(rng, 6, 2, 8)
    st = np.array([0, 0, 0, 2, 2, 2, 2, 5])
    add("repeats_and_unvisited", z, st, ac, rng.standard_normal(8), consistent(z, st, ac, 0.3))
    for k in range(n_random):
        S, A, M = int(rng.integers(1, 6)), int(rng.integers(2, 5)), int(rng.integers(1, 30))
        z, st, ac = _random_tabular(rng, S, A, M, scale=float(rng.choice([0.5, 2.0, 8.0])))
        add(f"random_{k}", z, st, ac, rng.standard_normal(M) * float(rng.choice([0.1, 1, 10])),
            consistent(z, st, ac, float(rng.choice([0.0, 0.3, 1.0]))))
    return cases


def _verify_surrogate(fn, output, sign, form, precision, seed, n_random):
    _choice("sign", sign, ("objective", "loss"))
    _choice("form", form, ("ratio", "log_prob"))
    eps = _eps(precision)
    n_random = check_positive_int("n_random", n_random, minimum=0)
    s = 1.0 if sign == "objective" else -1.0

    def evaluate(case):
        x = case.inputs
        value, grad, ops, vmag, gmag = _surrogate(x, s, form)
        args = tuple(np.array(x[k], copy=True) for k in
                     ("logits", "states", "actions", "advantages", "old_log_probs"))
        if output == "value":
            out = safe_call(fn, args, shape=())
            return _direct(out, np.asarray(value), 16 * eps * ops * vmag + 1e-300)
        out = safe_call(fn, args, shape=grad.shape)
        return _direct(out, grad, 16 * eps * ops * gmag + 1e-300)

    what = "L" if output == "value" else "dL/dlogits (S, A)"
    formula = ("mean_j exp(log pi(a_j|s_j) - old_log_probs_j) A_j" if form == "ratio"
               else "mean_j log pi(a_j|s_j) A_j")
    conventions = {"output": what, "sign": sign, "form": form, "L": formula,
                   "precision": precision}
    departures = ()
    if form == "log_prob":
        departures = ("log-prob form: same gradient as the ratio form only at logits whose "
                      "log-probabilities equal old_log_probs (ratio 1); its value is not the "
                      "surrogate (S4) and cannot drive a line search",)
    return _run("surrogate" if output == "value" else "surrogate_gradient",
                _surrogate_cases(seed, n_random), evaluate,
                tolerance=f"per entry 16 eps (M + A + 4 + max|z| + max|old|) x sum|terms|, "
                          f"eps = {eps:.3g}",
                conventions=conventions, departures=departures,
                extra=_tabular_candidates(("advantages", "old_log_probs"), ("logits",)),
                size=_tab_size)


def verify_surrogate(fn, *, sign="objective", form="ratio", precision="float64", seed=0,
                     n_random=8):
    """Verify ``fn(logits, states, actions, advantages, old_log_probs) -> scalar``.

    ``logits: (S, A)`` of a tabular softmax, ``states, actions: (M,)`` int,
    ``advantages, old_log_probs: (M,)``. Reference (V1), i.e. (S4) with unit weights:
    ``L = mean_j exp(log softmax(logits)[s_j, a_j] - old_log_probs_j) A_j``
    (``form="ratio"``) or ``mean_j log pi(a_j|s_j) A_j`` (``form="log_prob"``);
    ``sign="loss"`` expects ``-L``. ``precision`` ``"float64"`` or ``"float32"``
    scales the tolerance. Returns ``VerifyReport``. Example (NumPy)::

        def surrogate(logits, states, actions, adv, old_logp):
            z = logits - logits.max(axis=1, keepdims=True)
            logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
            return np.mean(np.exp(logp[states, actions] - old_logp) * adv)

    PyTorch: ``lambda *a: torch_loss(*map(torch.as_tensor, a))``.
    derivations/verify_trpo.md#calling-conventions
    """
    return _verify_surrogate(fn, "value", sign, form, precision, seed, n_random)


def verify_surrogate_gradient(fn, *, sign="objective", form="ratio", precision="float64",
                              seed=0, n_random=8):
    """Verify ``fn(logits, states, actions, advantages, old_log_probs) -> (S, A)``, the
    gradient (V2) of the surrogate of ``verify_surrogate`` with respect to ``logits``:
    ``(1/M) sum_j w_j A_j (e_{a_j} - pi(.|s_j))`` in row ``s_j`` (``w_j`` the ratio,
    or 1 in the log-prob form); ``old_log_probs`` and ``advantages`` are constants.
    PyTorch: ``logits = torch.tensor(z, requires_grad=True); loss.backward();
    return logits.grad``. derivations/verify_trpo.md#calling-conventions
    """
    return _verify_surrogate(fn, "gradient", sign, form, precision, seed, n_random)


# =========================================================================== Fisher-vector products
def _fvp_cases(seed, n_random):
    rng = np.random.default_rng(seed)
    cases = []

    def add(name, z, st, v, damping):
        cases.append(Case(name, dict(logits=np.asarray(z, float), states=np.asarray(st),
                                     v=np.asarray(v, float), damping=float(damping)),
                          row_fields=("states",)))

    add("tiny_one_sample", [[0.4, -0.3]], [0], [[1.0, -2.0]], 0.0)
    z = rng.standard_normal((5, 3))
    add("single_visits_damped", z, np.arange(5), rng.standard_normal((5, 3)), 0.1)
    z = 30.0 + rng.standard_normal((3, 4))
    add("logits_magnitude_30", z, rng.integers(0, 3, 9), rng.standard_normal((3, 4)), 1e-3)
    z = np.array([[15.0, 0.0, -3.0], [0.0, 14.0, 1.0], [2.0, 2.0, 2.0]])
    add("near_deterministic", z, [0, 0, 1, 2, 2, 0], rng.standard_normal((3, 3)), 0.0)
    z = rng.standard_normal((6, 2))
    add("unvisited_states_damped", z, [0, 0, 0, 2, 2, 5], rng.standard_normal((6, 2)), 0.1)
    z = rng.standard_normal((3, 4))
    add("null_space_direction", z, [0, 1, 1, 2], np.outer([1.0, -2.0, 0.5], np.ones(4)), 0.01)
    z = rng.standard_normal((4, 3))
    add("many_repeats", z, rng.integers(0, 2, 40), 10.0 * rng.standard_normal((4, 3)), 1e-2)
    for k in range(n_random):
        S, A, M = int(rng.integers(1, 6)), int(rng.integers(2, 5)), int(rng.integers(1, 30))
        add(f"random_{k}", float(rng.choice([0.5, 3.0])) * rng.standard_normal((S, A)),
            rng.integers(0, S, M), rng.standard_normal((S, A)),
            float(rng.choice([0.0, 1e-3, 0.1])))
    return cases


def _fvp_ref(x, stride):
    z = np.asarray(x["logits"], dtype=float)
    S, A = z.shape
    st = np.asarray(x["states"])[::stride]
    v, lam = np.asarray(x["v"], float), float(x["damping"])
    pol = TabularSoftmaxPolicy(S, A)
    out = pol.fisher_vector_product(z.ravel(), v.ravel(), st).reshape(S, A) + lam * v
    pi = np.exp(log_softmax(z))
    w = np.bincount(st, minlength=S) / st.size
    mag = w[:, None] * pi * (np.abs(v) + np.sum(pi * np.abs(v), axis=1, keepdims=True)) \
        + lam * np.abs(v)
    ops = A + st.size + 4 + float(np.max(np.abs(z)))
    return out, ops, mag


def verify_fvp(fn, *, stride=1, precision="float64", seed=0, n_random=8):
    """Verify ``fn(logits, states, v, damping) -> (S, A)``, the damped Fisher-vector product (V3)

        (F + lam I) v,   F = Hess_z  (1/M') sum_j KL(pi_old(.|s_j) || pi_z(.|s_j)) at z = logits

    over the samples ``j = 0, stride, 2 stride, ...`` (``M'`` of them; baselines
    uses ``stride=5``). Per visited state ``s`` with weight ``w_s`` (its share of
    the samples): ``w_s (pi_s * v_s - pi_s (pi_s . v_s))``; every entry, visited or
    not, gets ``+ lam v``. ``logits, v: (S, A)``; ``states: (M,)`` int; ``damping``
    a float. The KL direction does not matter (same Hessian at ``z = logits``).
    Example (NumPy)::

        def fvp(logits, states, v, damping):
            p = np.exp(logits - logits.max(1, keepdims=True)); p /= p.sum(1, keepdims=True)
            w = np.bincount(states, minlength=len(logits))[:, None] / len(states)
            return w * (p * v - p * (p * v).sum(1, keepdims=True)) + damping * v

    PyTorch (double backprop): ``kl = kl(old.detach(), pi(z)).mean(); g = grad(kl, z,
    create_graph=True); return grad((g * v).sum(), z) + damping * v``.
    derivations/verify_trpo.md#calling-conventions
    """
    stride = check_positive_int("stride", stride)
    eps = _eps(precision)

    def evaluate(case):
        x = case.inputs
        ref, ops, mag = _fvp_ref(x, stride)
        out = safe_call(fn, (np.array(x["logits"], copy=True), np.array(x["states"], copy=True),
                             np.array(x["v"], copy=True), float(x["damping"])), shape=ref.shape)
        return _direct(out, ref, 16 * eps * ops * mag + 1e-300)

    return _run("fisher_vector_product", _fvp_cases(seed, n_random), evaluate,
                tolerance=f"per entry 16 eps (A + M + 4 + max|z|) x (w_s pi (|v| + pi.|v|) + "
                          f"lam |v|), eps = {eps:.3g}",
                conventions={"F": "Hessian of mean_j KL(pi_old || pi) at logits",
                             "reduction": "mean over samples", "stride": stride,
                             "damping": "added to every entry", "precision": precision},
                departures=(() if stride == 1 else
                            (f"Fisher from every {stride}-th sample: a noisier F",)),
                extra=_tabular_candidates((), ("logits", "v")), size=_tab_size)


def _gaussian_cases(seed, n_random, m, bias):
    rng = np.random.default_rng(seed)
    cases = []

    def add(name, k, obs, log_std_scale=0.5, v_scale=1.0, damping=0.0, theta_scale=1.0):
        pol = LinearGaussianPolicy(k, m, bias=bias)
        theta = theta_scale * rng.standard_normal(pol.n_params)
        theta[-m:] = log_std_scale * rng.standard_normal(m)
        cases.append(Case(name, dict(theta=theta, obs=np.asarray(obs, float),
                                     v=v_scale * rng.standard_normal(pol.n_params),
                                     damping=float(damping)), row_fields=("obs",)))

    add("one_sample", 1, [[0.7]])
    add("one_sample_damped", 3, rng.standard_normal((1, 3)), damping=0.1)
    add("large_observations", 2, 1e3 * rng.standard_normal((5, 2)), damping=1e-3)
    add("tiny_std", 3, rng.standard_normal((6, 3)), log_std_scale=5.0)
    add("zero_observations", 2, np.zeros((4, 2)), damping=0.01)
    add("many_samples", 4, rng.standard_normal((64, 4)), v_scale=10.0, damping=0.1)
    for k in range(n_random):
        kd, M = int(rng.integers(1, 5)), int(rng.integers(1, 20))
        add(f"random_{k}", kd, float(rng.choice([0.1, 1.0, 10.0])) * rng.standard_normal((M, kd)),
            log_std_scale=float(rng.choice([0.1, 1.0, 3.0])), damping=float(rng.choice([0, 0.1])))
    return cases


def verify_gaussian_fvp(fn, *, act_dim=2, bias=True, precision="float64", seed=0, n_random=6):
    """Verify ``fn(theta, obs, v, damping) -> (d,)`` for a linear Gaussian policy
    ``a ~ N(K s (+ b), diag(exp(2 log_std)))`` (refpg.policies.LinearGaussianPolicy), (V3) with

        (F + lam I) v,  F = (1/M) sum_i [ J_mu^T Sigma^{-1} J_mu (+) 2 I on log_std ]   (G6)

    the Hessian of the mean KL over ``obs`` at ``theta``. ``theta, v: (d,)`` laid out
    ``[K row-major (act_dim * k), b (act_dim, if bias), log_std (act_dim)]``;
    ``obs: (M, k)``. Example (NumPy, bias=False)::

        def fvp(theta, obs, v, damping):
            m, k = 2, obs.shape[1]; ls = theta[-m:]; VK = v[:m * k].reshape(m, k)
            u = (obs @ VK.T) * np.exp(-2 * ls) / len(obs)
            return np.concatenate([(u.T @ obs).ravel(), 2 * v[-m:]]) + damping * v

    derivations/verify_trpo.md#calling-conventions
    """
    m = check_positive_int("act_dim", act_dim)
    if not isinstance(bias, (bool, np.bool_)):
        raise TypeError(f"bias must be True or False; got {bias!r}")
    eps = _eps(precision)

    def evaluate(case):
        x = case.inputs
        obs = np.asarray(x["obs"], float)
        pol = LinearGaussianPolicy(obs.shape[1], m, bias=bool(bias))
        theta, v, lam = np.asarray(x["theta"], float), np.asarray(x["v"], float), x["damping"]
        ref = pol.fisher_vector_product(theta, v, obs) + lam * v
        mag = pol.fisher_vector_product(theta, np.abs(v), np.abs(obs)) + lam * np.abs(v)
        ops = obs.shape[1] + m + obs.shape[0] + 4 + 2 * float(np.max(np.abs(theta[-m:])))
        out = safe_call(fn, (theta.copy(), obs.copy(), v.copy(), float(lam)), shape=ref.shape)
        return _direct(out, ref, 16 * eps * ops * mag + 1e-300)

    def size(case):
        return f"(M, k) = {np.asarray(case.inputs['obs']).shape}"

    return _run("gaussian_fisher_vector_product", _gaussian_cases(seed, n_random, m, bool(bias)),
                evaluate, tolerance=f"per entry 16 eps (k + m + M + 4 + 2 max|log_std|) x "
                                    f"(the product with |v|, |obs|), eps = {eps:.3g}",
                conventions={"F": "Hessian of mean_i KL(pi_old || pi) at theta (G6)",
                             "layout": "[K row-major, b, log_std]", "act_dim": m,
                             "bias": bool(bias), "precision": precision},
                size=size)


# =========================================================================== TRPO step
def golden_surrogate():
    """Golden vectors of the surrogate (V1) and its gradient (V2) (``verify_surrogate``).

    Returns ``(description, layout, vectors)``. derivations/verify_trpo.md#golden-vectors
    """
    eps = _EPS["float64"]
    out = []
    cases = _pick(_surrogate_cases(0, 2), ("tiny_one_state", "logits_magnitude_30",
                                           "near_deterministic", "ratios_far_from_one",
                                           "repeats_and_unvisited", "random_1"))
    for c in cases:
        for form in ("ratio", "log_prob"):
            if form == "log_prob" and c.name not in ("tiny_one_state", "random_1"):
                continue
            value, grad, ops, vmag, gmag = _surrogate(c.inputs, 1.0, form)
            atol = _up(16 * eps * ops * max(vmag, float(np.max(gmag))))
            ref_fn = ("refpg.surrogate.SampledSurrogate.value / .gradient (unit coefficients)"
                      if form == "ratio" else "refpg.verify.trpo.verify_surrogate (form=log_prob)")
            out.append(vector(f"{c.name}_{form}", f"surrogate ({form} form) and its gradient "
                              f"w.r.t. logits on the '{c.name}' case", ref_fn, c.inputs,
                              {"objective": value, "gradient_logits": grad}, rtol=0.0,
                              atol=atol, conventions={"sign": "objective", "form": form}))
    return ("TRPO surrogate L = mean_j w_j A_j (w_j = exp(log softmax(logits)[s_j, a_j] - "
            "old_log_probs_j) in the ratio form, log pi(a_j|s_j) in the log-prob form) and "
            "dL/dlogits", "logits (S, A); states, actions (M,) int; advantages, old_log_probs "
            "(M,); expected objective scalar (+L; a loss is -L), gradient_logits (S, A)", out)


def golden_fvp():
    """Golden vectors of the damped Fisher-vector product (V3) over logits (``verify_fvp``).

    derivations/verify_trpo.md#golden-vectors
    """
    eps = _EPS["float64"]
    out = []
    for c in _pick(_fvp_cases(0, 2), ("tiny_one_sample", "single_visits_damped",
                                      "logits_magnitude_30", "near_deterministic",
                                      "unvisited_states_damped", "null_space_direction",
                                      "random_0")):
        ref, ops, mag = _fvp_ref(c.inputs, 1)
        out.append(vector(c.name, f"(F + damping I) v on the '{c.name}' case",
                          "refpg.policies.TabularSoftmaxPolicy.fisher_vector_product + damping v",
                          c.inputs, {"fvp": ref}, rtol=0.0,
                          atol=_up(16 * eps * ops * float(np.max(mag)))))
    return ("Fisher-vector product (F + damping I) v, F the Hessian of the mean over samples of "
            "KL(pi_old(.|s_j) || pi(.|s_j)) w.r.t. the logits, at the given logits",
            "logits, v (S, A); states (M,) int; damping float; expected fvp (S, A)", out)


def golden_gaussian_fvp():
    """Golden vectors of the linear-Gaussian Fisher-vector product (G6), (V3)
    (``verify_gaussian_fvp``). derivations/verify_trpo.md#golden-vectors
    """
    eps = _EPS["float64"]
    out = []
    for bias in (False, True):
        for c in _gaussian_cases(1 if bias else 0, 1, 2, bias)[:4]:
            x = c.inputs
            obs = np.asarray(x["obs"])
            pol = LinearGaussianPolicy(obs.shape[1], 2, bias=bias)
            theta, v, lam = x["theta"], x["v"], x["damping"]
            ref = pol.fisher_vector_product(theta, v, obs) + lam * v
            mag = pol.fisher_vector_product(theta, np.abs(v), np.abs(obs)) + lam * np.abs(v)
            ops = obs.shape[1] + 2 + obs.shape[0] + 4 + 2 * float(np.max(np.abs(theta[-2:])))
            out.append(vector(f"{c.name}_bias_{bias}".lower(), f"(F + damping I) v, linear "
                              f"Gaussian policy, act_dim 2, bias {bias}",
                              "refpg.policies.LinearGaussianPolicy.fisher_vector_product",
                              {**x, "act_dim": 2, "bias": bias}, {"fvp": ref}, rtol=0.0,
                              atol=_up(16 * eps * ops * float(np.max(mag)))))
    return ("Fisher-vector product of a linear Gaussian policy N(K s (+ b), diag(exp(2 log_std)))"
            ", Hessian of the mean KL over obs, plus damping v",
            "theta, v (d,) = [K row-major (act_dim*k), b (act_dim, if bias), log_std (act_dim)]; "
            "obs (M, k); expected fvp (d,)", out)
