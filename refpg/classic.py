"""Small classic MDPs whose values are known in closed form or from a published table (SCOPE M1).

* ``two_state_chain``: a two-state Markov chain (one action) with closed-form
  ``V``, ``rho`` and ``eta`` (derivations/classic.md#two-state-chain);
* ``random_walk``: Sutton & Barto's random walk (2nd ed., Example 6.2), true
  values ``k / (n + 1)`` and expected visits in closed form
  (derivations/classic.md#random-walk);
* ``gridworld``: Sutton & Barto's 5x5 gridworld (2nd ed., Example 3.5,
  Figures 3.2 and 3.5) with its published value tables
  (derivations/classic.md#gridworld);
* ``short_corridor``: Sutton & Barto's short corridor with switched actions
  (2nd ed., Example 13.1), where the best policy that cannot see the state is
  stochastic, ``P(right) = 2 - sqrt(2)`` (derivations/classic.md#short-corridor).

Every constructor returns a validated ``FiniteMDP`` whose ``info`` says what
its states and actions mean; the closed forms are written independently of
the linear algebra in ``refpg.evaluation`` so that the two can check each other.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .mdp import FiniteMDP
from .validation import as_float_array, check_gamma, check_positive_int, check_probabilities

__all__ = ["TwoStateClosedForm", "two_state_chain", "two_state_chain_closed_form",
           "random_walk", "random_walk_closed_form", "gridworld",
           "GRIDWORLD_RANDOM_POLICY_VALUES", "GRIDWORLD_OPTIMAL_VALUES",
           "short_corridor", "short_corridor_policy", "short_corridor_value",
           "SHORT_CORRIDOR_BEST_PROB_RIGHT", "SHORT_CORRIDOR_BEST_VALUE"]


# --------------------------------------------------------------------------- two-state chain

@dataclass(frozen=True)
class TwoStateClosedForm:
    """Closed-form ``V: (2,)``, ``rho: (2,)`` and ``eta`` of the two-state chain (C1-C3).

    derivations/classic.md#two-state-chain
    """

    V: np.ndarray
    rho: np.ndarray
    eta: float


def _check_unit(name, x):
    try:
        x = float(x)
    except Exception as exc:
        raise TypeError(f"{name} must be a real number; got {x!r}") from exc
    if not (0.0 <= x <= 1.0):
        raise ValueError(f"{name} must lie in [0, 1]; got {x!r}")
    return x


def _check_real(name, x):
    try:
        x = float(x)
    except Exception as exc:
        raise TypeError(f"{name} must be a real number; got {x!r}") from exc
    if not np.isfinite(x):
        raise ValueError(f"{name} must be finite; got {x!r}")
    return x


def two_state_chain(p, q, r0, r1, *, gamma=0.9, rho0=(1.0, 0.0)):
    """Two states, one action: ``P = [[1-p, p], [q, 1-q]]``, ``r = (r0, r1)``.

    ``p`` is the probability of leaving state 0, ``q`` of leaving state 1;
    ``gamma`` in [0, 1); ``rho0: (2,)``. Values in closed form:
    ``two_state_chain_closed_form``. derivations/classic.md#two-state-chain
    """
    p, q = _check_unit("p", p), _check_unit("q", q)
    r0, r1 = _check_real("r0", r0), _check_real("r1", r1)
    gamma = check_gamma(gamma, allow_one=False)
    P = np.array([[[1.0 - p, p]], [[q, 1.0 - q]]])
    return FiniteMDP(P=P, r=[[r0], [r1]], rho0=rho0, gamma=gamma,
                     name=f"two-state chain(p={p:g}, q={q:g})",
                     info={"states": "0 and 1", "actions": "one action (a Markov reward process)"})


def two_state_chain_closed_form(p, q, r0, r1, *, gamma=0.9, rho0=(1.0, 0.0)):
    """Closed forms (C1-C3) of derivations/classic.md#two-state-chain, by Cramer's rule.

    With ``a0 = 1 - gamma (1-p)``, ``a1 = 1 - gamma (1-q)``, ``D = a0 a1 - gamma^2 p q``
    and ``rho0 = (b0, b1)``:

        V(0)   = (a1 r0 + gamma p r1) / D,    V(1)   = (gamma q r0 + a0 r1) / D    (C1)
        rho(0) = (a1 b0 + gamma q b1) / D,    rho(1) = (gamma p b0 + a0 b1) / D    (C2)
        eta    = b0 V(0) + b1 V(1)                                                 (C3)

    Returns a ``TwoStateClosedForm``.
    """
    p, q = _check_unit("p", p), _check_unit("q", q)
    r0, r1 = _check_real("r0", r0), _check_real("r1", r1)
    gamma = check_gamma(gamma, allow_one=False)
    b = as_float_array("rho0", rho0, shape=(2,))
    check_probabilities("rho0", b)
    a0 = 1.0 - gamma * (1.0 - p)
    a1 = 1.0 - gamma * (1.0 - q)
    D = a0 * a1 - gamma * gamma * p * q
    V = np.array([(a1 * r0 + gamma * p * r1) / D, (gamma * q * r0 + a0 * r1) / D])
    rho = np.array([(a1 * b[0] + gamma * q * b[1]) / D, (gamma * p * b[0] + a0 * b[1]) / D])
    return TwoStateClosedForm(V=V, rho=rho, eta=float(b @ V))


# --------------------------------------------------------------------------- random walk

def random_walk(n=5):
    """Sutton & Barto's random walk (2nd ed., Example 6.2) as an episodic MDP, ``gamma = 1``.

    States ``0 .. n+1``: ``0`` and ``n+1`` are terminal, ``1 .. n`` are the
    book's A..E for ``n = 5``. Actions ``0 = left``, ``1 = right`` move one
    cell deterministically; entering ``n+1`` pays ``+1``, every other step 0.
    Episodes start in the centre ``(n+1)/2`` (``n`` odd). The book's random
    walk is the equiprobable policy ``pi = 1/2``; its values are
    ``k / (n+1)`` (``random_walk_closed_form``).
    derivations/classic.md#random-walk
    """
    n = check_positive_int("n", n)
    if n % 2 == 0:
        raise ValueError(f"n must be odd (episodes start in the centre state); got {n}")
    S = n + 2
    P = np.zeros((S, 2, S))
    r = np.zeros((S, 2))
    for s in range(1, n + 1):
        P[s, 0, s - 1] = 1.0
        P[s, 1, s + 1] = 1.0
    r[n, 1] = 1.0
    for s in (0, n + 1):
        P[s, :, s] = 1.0
    terminal = np.zeros(S, dtype=bool)
    terminal[[0, n + 1]] = True
    rho0 = np.zeros(S)
    rho0[(n + 1) // 2] = 1.0
    names = [chr(ord("A") + k) for k in range(n)] if n <= 26 else None
    return FiniteMDP(P=P, r=r, rho0=rho0, gamma=1.0, terminal=terminal,
                     name=f"random walk (n={n})",
                     info={"states": "0 = left end (terminal), 1..n = the walk's cells "
                                     "(A..E for n = 5), n+1 = right end (terminal)",
                           "state_names": names,
                           "actions": ("left", "right"),
                           "source": "Sutton & Barto (2018), Example 6.2"})


def random_walk_closed_form(n=5):
    """Values and expected visits of the equiprobable random walk (C4-C5), shape ``(n+2,)`` each.

        V(k)   = k / (n + 1),                                   k = 1 .. n       (C4)
        rho(k) = 2 min(c, k) (n + 1 - max(c, k)) / (n + 1),     k = 1 .. n       (C5)

    with ``c = (n+1)/2`` the start; ``V`` and ``rho`` are zero on the terminal
    ends (refpg's convention: the ``+1`` is paid on entering ``n+1``) and
    ``sum_k rho(k) = c (n + 1 - c)`` is the expected episode length.
    Returns ``(V, rho)``. derivations/classic.md#random-walk
    """
    n = check_positive_int("n", n)
    if n % 2 == 0:
        raise ValueError(f"n must be odd (episodes start in the centre state); got {n}")
    k = np.arange(n + 2)
    c = (n + 1) // 2
    V = k / (n + 1)
    V[[0, n + 1]] = 0.0
    rho = 2.0 * np.minimum(c, k) * (n + 1 - np.maximum(c, k)) / (n + 1)
    rho[[0, n + 1]] = 0.0
    return V, rho


# --------------------------------------------------------------------------- gridworld

#: Sutton & Barto (2018), Figure 3.2 (right): V of the equiprobable random policy on the
#: gridworld of Example 3.5, gamma = 0.9, as printed (one decimal, so |error| <= 0.05).
#: Row 0 is the top row of the figure. derivations/classic.md#gridworld
GRIDWORLD_RANDOM_POLICY_VALUES = np.array([
    [3.3, 8.8, 4.4, 5.3, 1.5],
    [1.5, 3.0, 2.3, 1.9, 0.5],
    [0.1, 0.7, 0.7, 0.4, -0.4],
    [-1.0, -0.4, -0.4, -0.6, -1.2],
    [-1.9, -1.3, -1.2, -1.4, -2.0],
])
GRIDWORLD_RANDOM_POLICY_VALUES.flags.writeable = False

#: Sutton & Barto (2018), Figure 3.5 (middle): V* of the gridworld of Example 3.5,
#: gamma = 0.9, as printed (one decimal, so |error| <= 0.05). derivations/classic.md#gridworld
GRIDWORLD_OPTIMAL_VALUES = np.array([
    [22.0, 24.4, 22.0, 19.4, 17.5],
    [19.8, 22.0, 19.8, 17.8, 16.0],
    [17.8, 19.8, 17.8, 16.0, 14.4],
    [16.0, 17.8, 16.0, 14.4, 13.0],
    [14.4, 16.0, 14.4, 13.0, 11.7],
])
GRIDWORLD_OPTIMAL_VALUES.flags.writeable = False

_MOVES = {0: (-1, 0), 1: (1, 0), 2: (0, 1), 3: (0, -1)}  # north, south, east, west


def gridworld(gamma=0.9):
    """Sutton & Barto's 5x5 gridworld (2nd ed., Example 3.5), ``S = 25``, ``A = 4``.

    State ``5 * row + col`` (row 0 at the top); actions ``0..3`` = north,
    south, east, west. A move off the grid leaves the state unchanged and
    pays ``-1``; from ``A = (0, 1)`` every action moves to ``A' = (4, 1)`` and
    pays ``+10``; from ``B = (0, 3)`` every action moves to ``B' = (2, 3)``
    and pays ``+5``; every other move pays 0. Continuing task, ``gamma`` in
    [0, 1) (the book uses 0.9); ``rho0`` uniform (the book fixes none).
    Published values: ``GRIDWORLD_RANDOM_POLICY_VALUES`` (Figure 3.2),
    ``GRIDWORLD_OPTIMAL_VALUES`` (Figure 3.5). derivations/classic.md#gridworld
    """
    gamma = check_gamma(gamma, allow_one=False)
    n = 5
    S = n * n
    P = np.zeros((S, 4, S))
    r = np.zeros((S, 4))
    for row in range(n):
        for col in range(n):
            s = n * row + col
            for a, (dr, dc) in _MOVES.items():
                if (row, col) == (0, 1):
                    P[s, a, n * 4 + 1] = 1.0
                    r[s, a] = 10.0
                elif (row, col) == (0, 3):
                    P[s, a, n * 2 + 3] = 1.0
                    r[s, a] = 5.0
                else:
                    r2, c2 = row + dr, col + dc
                    if 0 <= r2 < n and 0 <= c2 < n:
                        P[s, a, n * r2 + c2] = 1.0
                    else:
                        P[s, a, s] = 1.0
                        r[s, a] = -1.0
    return FiniteMDP(P=P, r=r, rho0=np.full(S, 1.0 / S), gamma=gamma,
                     name=f"gridworld (Sutton & Barto Ex. 3.5, gamma={gamma:g})",
                     info={"states": "5 * row + col, row 0 at the top",
                           "actions": ("north", "south", "east", "west"),
                           "special": {"A": 1, "A'": 21, "B": 3, "B'": 13},
                           "source": "Sutton & Barto (2018), Example 3.5"})


# --------------------------------------------------------------------------- short corridor

#: The best probability of "right" for a policy that cannot see the state (C7): 2 - sqrt(2).
SHORT_CORRIDOR_BEST_PROB_RIGHT = 2.0 - np.sqrt(2.0)
#: Its value from the start state (C8): -(6 + 4 sqrt(2)) = -11.657...
SHORT_CORRIDOR_BEST_VALUE = -(6.0 + 4.0 * np.sqrt(2.0))


def short_corridor():
    """Sutton & Barto's short corridor with switched actions (2nd ed., Example 13.1), ``gamma = 1``.

    States ``0, 1, 2`` non-terminal, ``3`` the terminal goal; actions
    ``0 = left``, ``1 = right``. In states 0 and 2 the actions move as named
    (left from 0 bumps into the wall and stays); in state 1 they are
    reversed. Every step pays ``-1``; episodes start in state 0.

    The book's point is that the agent *cannot see the state*: all three
    states emit the same observation (``info["observation"]``), so the policy
    class is ``pi(right | s) = p`` for every ``s`` (``short_corridor_policy``).
    The MDP itself is an ordinary fully observed ``FiniteMDP``; the aliasing
    is a restriction on the policy, and ``evaluate`` of
    ``short_corridor_policy(p)`` gives the aliased agent's values.
    derivations/classic.md#short-corridor
    """
    S = 4
    P = np.zeros((S, 2, S))
    P[0, 0, 0] = 1.0   # left at the wall: stay
    P[0, 1, 1] = 1.0
    P[1, 0, 2] = 1.0   # switched: left goes right
    P[1, 1, 0] = 1.0   # switched: right goes left
    P[2, 0, 1] = 1.0
    P[2, 1, 3] = 1.0
    P[3, :, 3] = 1.0
    r = np.full((S, 2), -1.0)
    r[3] = 0.0
    return FiniteMDP(P=P, r=r, rho0=[1.0, 0.0, 0.0, 0.0], gamma=1.0,
                     terminal=np.array([False, False, False, True]),
                     name="short corridor (Sutton & Barto Ex. 13.1)",
                     info={"states": "0 = start, 1 = the switched state, 2, 3 = goal (terminal)",
                           "actions": ("left", "right"),
                           "observation": np.zeros(S, dtype=np.int64),
                           "source": "Sutton & Barto (2018), Example 13.1"})


def short_corridor_policy(prob_right):
    """The aliased policy ``pi(right | s) = p`` in every state: ``(4, 2)`` table (complex-safe).

    derivations/classic.md#short-corridor
    """
    p = np.asarray(prob_right)
    if p.ndim != 0 or p.dtype.kind not in "fic":
        raise TypeError(f"prob_right must be a real (or complex-step) scalar; got {prob_right!r}")
    if not (0.0 <= float(np.real(p)) <= 1.0):
        raise ValueError(f"prob_right must lie in [0, 1]; got {prob_right!r}")
    p = p.astype(np.complex128 if p.dtype.kind == "c" else np.float64)
    return np.stack([np.full(4, 1.0 - p), np.full(4, p)], axis=1)


def short_corridor_value(prob_right):
    """Closed-form value of the start state under ``short_corridor_policy(p)`` (C6), complex-safe.

        J(p) = V(0) = -2 (2 - p) / (p (1 - p)),   0 < p < 1

    (``-inf`` at ``p = 0`` or ``1``: those policies never reach the goal; this
    function raises ``ValueError`` there). derivations/classic.md#short-corridor
    """
    p = np.asarray(prob_right)
    if p.ndim != 0 or p.dtype.kind not in "fic":
        raise TypeError(f"prob_right must be a real (or complex-step) scalar; got {prob_right!r}")
    if not (0.0 < float(np.real(p)) < 1.0):
        raise ValueError(f"prob_right must lie in (0, 1) (p = 0 or 1 never reaches the goal); "
                         f"got {prob_right!r}")
    return -2.0 * (2.0 - p) / (p * (1.0 - p))
