"""`refpg verify` and `refpg vectors` on real user files: exit status 0 when the user's
implementation is right, 1 when it is wrong, 2 for usage errors (never a traceback)."""
import json
import textwrap

import pytest

from refpg import cli
from refpg.verify import vectors

USER_CODE = textwrap.dedent('''
    import numpy as np

    def good_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
        """GAE written as a plain per-row loop (batch-major), bootstrap on truncation."""
        adv = np.zeros_like(rewards)
        for i in range(rewards.shape[0]):
            last = 0.0
            for t in reversed(range(rewards.shape[1])):
                delta = rewards[i, t] + gamma * (1.0 - terminated[i, t]) * next_values[i, t] \\
                    - values[i, t]
                cont = 0.0 if (terminated[i, t] or truncated[i, t]) else 1.0
                last = delta + gamma * lam * cont * last
                adv[i, t] = last
        return adv

    def leaky_gae(rewards, values, next_values, terminated, truncated, gamma, lam):
        """The classic bug: the recursion is never cut at episode ends."""
        adv = np.zeros_like(rewards)
        last = np.zeros(rewards.shape[0])
        for t in reversed(range(rewards.shape[1])):
            delta = rewards[:, t] + gamma * (1.0 - terminated[:, t]) * next_values[:, t] \\
                - values[:, t]
            last = delta + gamma * lam * last
            adv[:, t] = last
        return adv

    def crashing(*args, **kwargs):
        raise RuntimeError("my code is broken")

    def f(x):
        return np.sum(x ** 3)

    def grad_f(x):
        return 3 * x ** 2
''')


@pytest.fixture
def user_file(tmp_path):
    path = tmp_path / "user_impl.py"
    path.write_text(USER_CODE)
    return path


def test_verify_passes_a_correct_implementation(user_file, capsys):
    assert cli.main(["verify", "gae", f"{user_file}:good_gae"]) == 0
    assert "PASSED" in capsys.readouterr().out


def test_verify_fails_a_leaky_gae_with_a_small_counterexample(user_file, capsys):
    assert cli.main(["verify", "gae", f"{user_file}:leaky_gae", "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["passed"] is False and report["problem"] == "mismatch"
    rewards = report["inputs"]["rewards"]
    assert len(rewards) <= 2 and len(rewards[0]) <= 4   # a handful of steps


def test_verify_reports_a_crashing_user_function(user_file, capsys):
    assert cli.main(["verify", "gae", f"{user_file}:crashing"]) == 1
    assert "my code is broken" in capsys.readouterr().out


def test_verify_options_are_typed_from_the_verifier_signature(user_file):
    # the leaky loop is right when no episode ever ends: but the battery has endings, so
    # it still fails under any preset; a typed numeric option must be accepted
    assert cli.main(["verify", "gae", f"{user_file}:good_gae", "--n_random", "3",
                     "--rtol", "1e-10"]) == 0


def test_verify_gradient_command(user_file):
    assert cli.main(["verify", "gradient", f"{user_file}:f", "--grad",
                     f"{user_file}:grad_f", "--x", "0.5,-1.0,2.0"]) == 0


def test_usage_errors_exit_2(user_file, capsys):
    assert cli.main(["verify", "no_such_quantity", f"{user_file}:good_gae"]) == 2
    assert cli.main(["verify", "gae", f"{user_file}:missing_function"]) == 2
    assert cli.main(["verify", "gae", "no_such_module_xyz:fn"]) == 2
    assert cli.main(["verify", "gae", f"{user_file}:good_gae", "--preset", "nope"]) == 2
    assert cli.main(["verify"]) == 2
    capsys.readouterr()
    assert cli.main(["verify", "gae", "--help"]) == 0
    assert "--preset" in capsys.readouterr().out


def test_vectors_command_writes_the_shipped_files(tmp_path):
    assert cli.main(["vectors", "--out", str(tmp_path), "--quantity", "gae",
                     "--quantity", "kl"]) == 0
    for q in ("gae", "kl"):
        written = json.loads((tmp_path / f"{q}.json").read_text())
        assert written == json.loads(vectors.to_json(vectors.generate(q)))
