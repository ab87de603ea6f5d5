"""V2: verify a user's KL divergences and entropies (SCOPE V2).

``verify_kl`` checks ``KL(p || q)`` (or, by an explicit ``direction``, ``KL(q || p)``)
between categorical distributions given by logits, probabilities or
log-probabilities, or between diagonal Gaussians, and the per-sample KL
estimators k1, k2, k3 of PPO code; ``verify_entropy`` checks entropies. The
battery has equal and shifted logits (KL exactly 0), close distributions
(KL ~ 1e-12), logits of magnitude 1000, exact zero probabilities, one-action
and one-component cases, and seeded random ones; a failure shrinks to a
single distribution with as few actions as still fail.
derivations/verify_distributions.md
"""
from __future__ import annotations

import numpy as np

from ..distributions import (_expm1mx, categorical_entropy, diag_gaussian_entropy,
                             kl_categorical, kl_diag_gaussian, log_softmax)
from .core import Case, Outcome
from .layouts import _bool, _choice, _float, _int, _invoke, _run_cases, bind
from .vectors import vector

__all__ = ["KL_ESTIMATORS", "kl_estimator_samples", "kl_estimator_moments", "verify_kl",
           "verify_entropy", "golden_kl", "golden_entropy"]

_INPUTS = ("logits", "probs", "log_probs")
_REDUCE = ("none", "mean", "sum")
_GAUSS = ("mean_p", "log_std_p", "mean_q", "log_std_q")
#: estimator name -> (formula, who uses it), PEER-CONVENTIONS.md PPO table.
KL_ESTIMATORS = {
    "k1": ("log p(x) - log q(x)", "Spinning Up, TorchRL kl_approx, CleanRL (logged)"),
    "k2": ("1/2 (log q(x) - log p(x))^2", "baselines ppo2"),
    "k3": ("(r - 1) - log r, r = q(x) / p(x)", "SB3, CleanRL"),
}


# --------------------------------------------------------------------------- references
def kl_estimator_samples(log_p, log_q, estimator):
    """Per-sample value of a KL estimator at samples ``x ~ p``: same shape as ``log_p``.

    ``log_p = log p(x_i)`` (the sampling, "old" policy), ``log_q = log q(x_i)``
    ("new"); with ``l = log q - log p``: ``k1 = -l``, ``k2 = l^2 / 2``,
    ``k3 = e^l - 1 - l`` (evaluated without cancellation, (D7)). k1 and k3 are
    unbiased for ``KL(p || q)``; k2 is not (``kl_estimator_moments``).
    derivations/verify_distributions.md#kl-estimators
    """
    _choice("estimator", estimator, tuple(KL_ESTIMATORS))
    lr = np.asarray(log_q, float) - np.asarray(log_p, float)
    if estimator == "k1":
        return -lr
    if estimator == "k2":
        return 0.5 * lr * lr
    return _expm1mx(lr)


def kl_estimator_moments(p_logits, q_logits, estimator):
    """Exact ``(mean, variance)`` of one sample of a KL estimator, ``x ~ p``, by enumeration.

        E_p[k] = sum_a p_a k(a),   Var_p[k] = sum_a p_a k(a)^2 - E_p[k]^2       (K1)

    ``p_logits, q_logits: (..., A)`` -> two ``(...)`` arrays. ``E_p[k1] =
    E_p[k3] = KL(p || q)`` exactly; ``E_p[k2] = 1/2 E_p[(log q/p)^2]``.
    derivations/verify_distributions.md#kl-estimators
    """
    lp, lq = log_softmax(p_logits), log_softmax(q_logits)
    p = np.exp(lp)
    k = kl_estimator_samples(lp, lq, estimator)
    mean = np.sum(p * k, axis=-1)
    return mean, np.maximum(np.sum(p * (k - mean[..., None]) ** 2, axis=-1), 0.0)


def _represent(z, inputs):
    if inputs == "logits":
        return np.array(z, float)
    lp = log_softmax(z)
    return lp if inputs == "log_probs" else np.exp(lp)


def _reduce(x, reduce):
    return x if reduce == "none" else (np.mean(x) if reduce == "mean" else np.sum(x))


# --------------------------------------------------------------------------- batteries
def _cat(name, p, q):
    return Case(name, {"p": np.atleast_2d(np.asarray(p, float)),
                       "q": np.atleast_2d(np.asarray(q, float))}, time_fields=("p", "q"))


def _categorical_cases(rng, n_random):
    z = np.round(rng.normal(0.0, 1.5, (2, 4)), 3)
    c = [_cat("equal distributions (KL = 0)", z[:, :3], z[:, :3].copy()),
         _cat("logits shifted by a constant (same distribution, KL = 0)", z, z + 3.7),
         _cat("close distributions (KL ~ 1e-12)", z, z + 1e-6 * rng.standard_normal(z.shape)),
         _cat("extreme logits (|z| = 1000), moderate KL", [[1000.0, 999.0, -1000.0]],
              [[999.0, 1000.0, 0.0]]),
         _cat("extreme logits (|z| = 1000), KL ~ 2000", [[1000.0, 0.0, -1000.0]],
              [[-1000.0, 0.0, 1000.0]]),
         _cat("near-deterministic p (logits 30, 0, 0)", [[30.0, 0.0, 0.0]], [[0.0, 0.5, -0.5]]),
         _cat("a probability exactly 0 under p (0 log 0 = 0)", [[0.0, 1.0, -1e5]],
              [[0.5, 0.0, 0.0]]),
         _cat("two actions", [[0.3, -0.4]], [[-1.1, 0.9]]),
         _cat("one action (KL = 0)", [[0.7], [-2.0]], [[-0.3], [5.0]])]
    for k in range(int(n_random)):
        B, A = int(rng.integers(1, 6)), int(rng.integers(2, 7))
        s = float(rng.choice([0.3, 1.0, 3.0]))
        c.append(_cat(f"random {k}", np.round(rng.normal(0, s, (B, A)), 3),
                      np.round(rng.normal(0, s, (B, A)), 3)))
    return c


def _gauss(name, mean_p, log_std_p, mean_q, log_std_q):
    arrays = [np.atleast_2d(np.asarray(a, float)) for a in (mean_p, log_std_p, mean_q, log_std_q)]
    return Case(name, dict(zip(_GAUSS, arrays)), time_fields=_GAUSS)


def _gaussian_cases(rng, n_random):
    m, s = np.round(rng.normal(0, 1, (2, 3)), 3), np.round(rng.normal(0, 0.5, (2, 3)), 3)
    c = [_gauss("equal distributions (KL = 0)", m, s, m.copy(), s.copy()),
         _gauss("close distributions (KL ~ 1e-14)", m, s, m + 1e-7, s - 1e-7),
         _gauss("very different scales (log_std = +-10)", [[0.0, 1.0]], [[10.0, -10.0]],
                [[0.5, 1.0]], [[-10.0, 10.0]]),
         _gauss("means 1000 standard deviations apart", [[0.0, 3.0]], [[0.0, -3.0]],
                [[1000.0, 3.0 + 1000.0 * np.exp(-3.0)]], [[0.0, -3.0]]),
         _gauss("one component", [[0.2]], [[0.1]], [[-0.4]], [[-0.6]])]
    for k in range(int(n_random)):
        B, d = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        c.append(_gauss(f"random {k}", *[np.round(rng.normal(0, sd, (B, d)), 3)
                                         for sd in (1.0, 0.5, 1.0, 0.5)]))
    return c


def _estimator_pairs():
    rng = np.random.default_rng(12345)
    z = rng.normal(0.0, 1.0, (3, 4))
    return z, z + np.array([0.1, 0.5, 2.0])[:, None] * rng.standard_normal((3, 4))


def _estimator_cases(rng, n_random):
    c = [Case("equal log-probabilities (every sample 0)",
              {"log_p": np.array([-1.2, -0.3]), "log_q": np.array([-1.2, -0.3])},
              row_fields=("log_p", "log_q")),
         Case("tiny log-ratios (1e-9)", {"log_p": np.array([-1.0, -2.0]),
                                         "log_q": np.array([-1.0 + 1e-9, -2.0 - 1e-9])},
              row_fields=("log_p", "log_q")),
         Case("extreme log-ratios (+-700, +-50)",
              {"log_p": np.array([-700.5, -1.0, -50.2, -0.1]),
               "log_q": np.array([-0.5, -701.0, -0.2, -50.1])}, row_fields=("log_p", "log_q"))]
    pz, qz = _estimator_pairs()
    lp, lq = log_softmax(pz), log_softmax(qz)
    for k in range(max(int(n_random), 1)):
        i = k % 3
        x = rng.choice(4, size=int(rng.integers(1, 9)), p=np.exp(lp[i]))
        c.append(Case(f"samples from pair {i}, draw {k}", {"log_p": lp[i, x], "log_q": lq[i, x]},
                      row_fields=("log_p", "log_q")))
    return c


# --------------------------------------------------------------------------- verify_kl
def _kl_reference(family, direction, estimator, reduce):
    def ref(x):
        if estimator != "exact":
            per = kl_estimator_samples(x["log_p"], x["log_q"], estimator)
        elif family == "categorical":
            a, b = (x["p"], x["q"]) if direction == "pq" else (x["q"], x["p"])
            per = kl_categorical(a, b)
        else:
            a, b = ((x["mean_p"], x["log_std_p"]), (x["mean_q"], x["log_std_q"]))
            per = kl_diag_gaussian(*((a + b) if direction == "pq" else (b + a)))
        return _reduce(per, reduce)
    return ref


def _kl_departures(family, direction, estimator, cases, ref):
    out = []
    if estimator != "exact":
        pz, qz = _estimator_pairs()
        kl = kl_categorical(pz, qz)
        mean, var = kl_estimator_moments(pz, qz, estimator)
        _, var3 = kl_estimator_moments(pz, qz, "k3")
        pairs = ", ".join(f"KL={a:.3g}: E[k]={b:.3g}, Var[k]={v:.3g}"
                          for a, b, v in zip(kl, mean, var))
        ratios = ", ".join(f"{r:.3g}" for r in var / var3)
        bias = ", ".join(f"{b - a:+.3g}" for a, b in zip(kl, mean))
        what = {"k1": f"unbiased for KL(p || q), but single samples are negative wherever "
                      f"q(x) > p(x) and its variance exceeds k3's on close pairs "
                      f"(Var[k1]/Var[k3] = {ratios})",
                "k2": f"biased: E_p[k2] = 1/2 E_p[(log q/p)^2] differs from KL(p || q) at "
                      f"third order in the log-ratio (bias {bias})",
                "k3": "unbiased for KL(p || q) and non-negative sample by sample"}[estimator]
        out.append(f"estimator {estimator!r} = {KL_ESTIMATORS[estimator][0]} "
                   f"(x ~ p) replaces the exact KL(p || q) of CONVENTIONS.md by a sample mean: "
                   f"{what}. Exact moments (K1) on three fixed categorical pairs: {pairs}")
    if direction == "qp":
        worst = 0.0
        other = _kl_reference(family, "pq", estimator, "none")
        for c in cases:
            worst = max(worst, float(np.max(np.abs(ref(c.inputs) - other(c.inputs)))))
        out.append(f"direction 'qp' computes KL(q || p); CONVENTIONS.md's trust-region "
                   f"constraint is KL(pi_old || pi_new) with p = old. Both have the Fisher "
                   f"matrix as Hessian at q = p (same TRPO step direction and length) but "
                   f"differ away from it, so a line search accepts different steps (Spinning "
                   f"Up's DiagGaussian, sb3-contrib). Measured on this battery: max "
                   f"|KL(q||p) - KL(p||q)| = {worst:.3g}")
    return out


def verify_kl(fn, *, family="categorical", inputs="logits", direction="pq", estimator="exact",
              reduce="none", gaussian_scale="log_std", rtol=1e-9, atol=1e-10, n_random=24,
              seed=0, shrink=True):
    """Verify a user's KL divergence (D3)/(D6) or KL estimator; returns a ``VerifyReport``.

        KL(p || q) = sum_a p_a log(p_a / q_a)                              (D3)
        KL(p || q) = sum_i [log s_q/s_p + (s_p^2 + (m_p - m_q)^2) / (2 s_q^2) - 1/2]   (D6)

    ``direction="pq"`` (default): the user computes ``KL(p || q)``; ``"qp"``:
    ``KL(q || p)`` of the same arguments. Calling convention
    (derivations/verify_distributions.md#calling-conventions):
    categorical, ``fn(p_logits, q_logits)`` with ``(B, A)`` arrays (``inputs
    ="probs"``: ``p_probs, q_probs``; ``"log_probs"``: normalised
    ``p_log_probs, q_log_probs``); Gaussian (``family="gaussian"``),
    ``fn(mean_p, log_std_p, mean_q, log_std_q)``, ``(B, m)`` arrays
    (``gaussian_scale="std"``: ``std_p, std_q``); returns ``(B,)``, or a number
    with ``reduce="mean"``/``"sum"``. ``estimator="k1"|"k2"|"k3"``: the
    per-sample estimators of PPO code, ``fn(log_p, log_q) -> (B,)`` at samples
    ``x_i ~ p`` (``log_p`` the sampling, old policy); the reference is the exact
    per-sample value (a deterministic check of the formula; the estimator's
    bias is reported separately from its exact expectation (K1)). Example::

        def kl(p_logits, q_logits):
            lp = p_logits - scipy.special.logsumexp(p_logits, axis=-1, keepdims=True)
            lq = q_logits - scipy.special.logsumexp(q_logits, axis=-1, keepdims=True)
            return np.sum(np.exp(lp) * (lp - lq), axis=-1)
        verify_kl(kl).passed                                             # True
        verify_kl(lambda log_p, log_q: np.expm1(log_q - log_p) - (log_q - log_p),
                  estimator="k3").passed                                 # True (CleanRL's)

    A PyTorch function converts the NumPy inputs (``torch.as_tensor``);
    tensors returned are converted back. derivations/verify_distributions.md#verify_kl
    """
    family = _choice("family", family, ("categorical", "gaussian"))
    inputs = _choice("inputs", inputs, _INPUTS)
    direction = _choice("direction", direction, ("pq", "qp"))
    estimator = _choice("estimator", estimator, ("exact",) + tuple(KL_ESTIMATORS))
    reduce = _choice("reduce", reduce, _REDUCE)
    scale = _choice("gaussian_scale", gaussian_scale, ("log_std", "std"))
    if estimator != "exact" and direction != "pq":
        raise ValueError("the KL estimators estimate KL(p || q) from samples of p; "
                         "direction must be 'pq'")
    tol = (_float("rtol", rtol, lo=0.0), _float("atol", atol, lo=0.0))
    rng = np.random.default_rng(_int("seed", seed))
    n_random = _int("n_random", n_random)
    if estimator != "exact":
        cases, names = _estimator_cases(rng, n_random), ("log_p", "log_q")
    elif family == "categorical":
        cases, names = _categorical_cases(rng, n_random), (f"p_{inputs}", f"q_{inputs}")
    else:
        cases, names = _gaussian_cases(rng, n_random), (
            "mean_p", f"{scale}_p", "mean_q", f"{scale}_q")
    binding = bind(fn, names)
    ref = _kl_reference(family, direction, estimator, reduce)

    def domain(case):
        if estimator != "exact" or family != "categorical" or inputs != "probs":
            return True
        a, b = (case.inputs["p"], case.inputs["q"])[:: 1 if direction == "pq" else -1]
        return not np.any((np.exp(log_softmax(a)) > 0) & (np.exp(log_softmax(b)) == 0))

    def user_inputs(case):
        x = case.inputs
        if estimator != "exact":
            return {"log_p": np.array(x["log_p"], float), "log_q": np.array(x["log_q"], float)}
        if family == "categorical":
            return dict(zip(names, (_represent(x["p"], inputs), _represent(x["q"], inputs))))
        conv = (lambda a: np.exp(a)) if scale == "std" else (lambda a: np.array(a, float))
        return dict(zip(names, (np.array(x["mean_p"], float), conv(x["log_std_p"]),
                                np.array(x["mean_q"], float), conv(x["log_std_q"]))))

    return _run("kl", fn, binding, cases, ref, domain, user_inputs, reduce, tol,
                _bool("shrink", shrink),
                {"family": family if estimator == "exact" else "any (per-sample)",
                 "inputs": inputs if family == "categorical" and estimator == "exact" else "-",
                 "direction": "KL(p || q)" if direction == "pq" else "KL(q || p)",
                 "estimator": estimator, "reduce": reduce,
                 "keywords": ", ".join(binding.names)},
                _kl_departures(family, direction, estimator, cases, ref))


def _run(quantity, fn, binding, cases, ref, domain, user_inputs, reduce, tol, shrink,
         conventions, departures, redundant=()):
    skipped = [c.name for c in cases if not domain(c)]
    cases = [c for c in cases if domain(c)]

    def call(case):
        x = user_inputs(case)
        shape = () if reduce != "none" else np.shape(ref(case.inputs))
        return _invoke(fn, binding, x, shape)

    def evaluate(case):
        if not domain(case):
            return np.zeros(()), Outcome(np.zeros(()))
        return ref(case.inputs), call(case)

    def to_user(case):
        x = user_inputs(case)
        return {k: x[k] for k in binding.names}

    notes = [n for n in [binding.note(redundant)] if n]
    if skipped:
        notes.append("outside the domain of these inputs (q = 0 where p > 0: infinite KL), "
                     "skipped: " + "; ".join(skipped))
    return _run_cases(quantity, cases, evaluate, tolerance=tol, conventions=conventions,
                     departures=departures, notes=notes, shrink=shrink, to_user_layout=to_user)


# --------------------------------------------------------------------------- verify_entropy
def _entropy_cases(rng, n_random):
    def case(name, z):
        return Case(name, {"logits": np.atleast_2d(np.asarray(z, float))},
                    time_fields=("logits",))
    c = [case("uniform (H = log A)", np.zeros((2, 5))),
         case("extreme logits (|z| = 1000)", [[1000.0, 999.0, -1000.0], [0.0, 1000.0, 0.0]]),
         case("near-deterministic (logits 30, 0, 0: H ~ 6e-12)", [[30.0, 0.0, 0.0]]),
         case("a probability exactly 0 (0 log 0 = 0)", [[0.0, 1.0, -1e5]]),
         case("two actions", [[0.3, -0.4]]),
         case("one action (H = 0)", [[0.7], [-2.0]])]
    for k in range(int(n_random)):
        B, A = int(rng.integers(1, 6)), int(rng.integers(2, 7))
        s = float(rng.choice([0.3, 1.0, 3.0]))
        c.append(case(f"random {k}", np.round(rng.normal(0, s, (B, A)), 3)))
    return c


def _gaussian_entropy_cases(rng, n_random):
    def case(name, mean, log_std):
        return Case(name, {"mean": np.atleast_2d(np.asarray(mean, float)),
                           "log_std": np.atleast_2d(np.asarray(log_std, float))},
                    time_fields=("mean", "log_std"))
    c = [case("standard normal components", np.zeros((2, 3)), np.zeros((2, 3))),
         case("very different scales (log_std = +-10)", [[0.0, 5.0]], [[10.0, -10.0]]),
         case("one component", [[0.2]], [[-0.6]])]
    for k in range(int(n_random)):
        B, d = int(rng.integers(1, 6)), int(rng.integers(1, 5))
        c.append(case(f"random {k}", np.round(rng.normal(0, 1, (B, d)), 3),
                      np.round(rng.normal(0, 0.5, (B, d)), 3)))
    return c


def verify_entropy(fn, *, family="categorical", inputs="logits", reduce="none",
                   gaussian_scale="log_std", rtol=1e-9, atol=1e-10, n_random=24, seed=0,
                   shrink=True):
    """Verify a user's entropy (D2)/(D5); returns a ``VerifyReport``.

        H(p) = -sum_a p_a log p_a                    (D2, categorical, 0 log 0 = 0)
        H = sum_i [log sigma_i + 1/2 log(2 pi e)]    (D5, diagonal Gaussian)

    Calling convention (derivations/verify_distributions.md#calling-conventions):
    categorical ``fn(logits)`` with ``(B, A)`` (``inputs="probs"``: ``fn(probs)``,
    ``"log_probs"``: ``fn(log_probs)``); Gaussian ``fn(mean, log_std)`` with
    ``(B, m)`` (``mean`` passed only if accepted; ``gaussian_scale="std"``:
    ``std``); returns ``(B,)`` or a number with ``reduce="mean"``/``"sum"``. Example::

        def entropy(probs):
            return -np.sum(scipy.special.xlogy(probs, probs), axis=-1)
        verify_entropy(entropy, inputs="probs").passed                  # True

    derivations/verify_distributions.md#verify_entropy
    """
    family = _choice("family", family, ("categorical", "gaussian"))
    inputs = _choice("inputs", inputs, _INPUTS)
    reduce = _choice("reduce", reduce, _REDUCE)
    scale = _choice("gaussian_scale", gaussian_scale, ("log_std", "std"))
    tol = (_float("rtol", rtol, lo=0.0), _float("atol", atol, lo=0.0))
    rng = np.random.default_rng(_int("seed", seed))
    n_random = _int("n_random", n_random)
    if family == "categorical":
        cases = _entropy_cases(rng, n_random)
        names = (inputs,)

        def ref(x):
            return _reduce(categorical_entropy(x["logits"]), reduce)

        def user_inputs(case):
            return {inputs: _represent(case.inputs["logits"], inputs)}
    else:
        cases = _gaussian_entropy_cases(rng, n_random)
        names = ("mean", scale)

        def ref(x):
            return _reduce(diag_gaussian_entropy(x["log_std"]), reduce)

        def user_inputs(case):
            ls = np.array(case.inputs["log_std"], float)
            return {"mean": np.array(case.inputs["mean"], float),
                    scale: np.exp(ls) if scale == "std" else ls}
    binding = bind(fn, names)
    return _run("entropy", fn, binding, cases, ref, lambda c: True, user_inputs, reduce, tol,
                _bool("shrink", shrink),
                {"family": family, "inputs": inputs if family == "categorical" else scale,
                 "reduce": reduce, "keywords": ", ".join(binding.names)}, [],
                redundant=[("mean", ())])


# --------------------------------------------------------------------------- golden vectors
def golden_kl():
    """Golden vectors of categorical and Gaussian KL (both directions) and of k1, k2, k3.

    derivations/verify_distributions.md#golden-vectors
    """
    rng = np.random.default_rng(0)
    out = []
    for c in _categorical_cases(rng, 3):
        p, q = c.inputs["p"], c.inputs["q"]
        out.append(vector(f"categorical: {c.name}", "KL between softmax(p_logits) and "
                          "softmax(q_logits), (D3), per row", "refpg.distributions.kl_categorical",
                          {"p_logits": p, "q_logits": q},
                          {"kl_pq": kl_categorical(p, q), "kl_qp": kl_categorical(q, p)},
                          rtol=1e-12, atol=1e-15, conventions={"family": "categorical"}))
    for c in _gaussian_cases(rng, 3):
        x = c.inputs
        out.append(vector(f"gaussian: {c.name}", "KL between diagonal Gaussians (D6), summed "
                          "over components, per row", "refpg.distributions.kl_diag_gaussian",
                          x, {"kl_pq": kl_diag_gaussian(*(x[k] for k in _GAUSS)),
                              "kl_qp": kl_diag_gaussian(x["mean_q"], x["log_std_q"],
                                                        x["mean_p"], x["log_std_p"])},
                          rtol=1e-12, atol=1e-15, conventions={"family": "gaussian"}))
    for c in _estimator_cases(rng, 3):
        x = c.inputs
        out.append(vector(f"estimators: {c.name}", "per-sample KL estimators at x ~ p",
                          "refpg.verify.distributions.kl_estimator_samples", x,
                          {k: kl_estimator_samples(x["log_p"], x["log_q"], k)
                           for k in KL_ESTIMATORS}, rtol=1e-12, atol=1e-15,
                          conventions={"estimators": {k: v[0] for k, v in KL_ESTIMATORS.items()}}))
    return ("KL(p || q) and KL(q || p) of categorical distributions (from logits) and diagonal "
            "Gaussians (mean, log_std), and the per-sample KL estimators k1, k2, k3 of PPO code.",
            "p_logits, q_logits: (B, A); mean_p, log_std_p, mean_q, log_std_q: (B, m); outputs "
            "(B,). Estimators: log_p, log_q (B,), log-probabilities of samples x ~ p under p and "
            "q; outputs (B,).", out)


def golden_entropy():
    """Golden vectors of categorical and Gaussian entropies.

    derivations/verify_distributions.md#golden-vectors
    """
    rng = np.random.default_rng(0)
    out = []
    for c in _entropy_cases(rng, 3):
        z = c.inputs["logits"]
        out.append(vector(f"categorical: {c.name}", "entropy of softmax(logits) (D2), per row",
                          "refpg.distributions.categorical_entropy", {"logits": z},
                          {"entropy": categorical_entropy(z)}, rtol=1e-12, atol=1e-15,
                          conventions={"family": "categorical"}))
    for c in _gaussian_entropy_cases(rng, 3):
        ls = c.inputs["log_std"]
        out.append(vector(f"gaussian: {c.name}", "entropy of a diagonal Gaussian (D5), per row",
                          "refpg.distributions.diag_gaussian_entropy", {"log_std": ls},
                          {"entropy": diag_gaussian_entropy(ls)}, rtol=1e-12, atol=1e-15,
                          conventions={"family": "gaussian"}))
    return ("Entropy of categorical distributions (from logits) and of diagonal Gaussians "
            "(from log standard deviations).",
            "logits: (B, A); log_std: (B, m); outputs (B,).", out)
