"""The PyTorch worked example (examples/torch_pg.py) passes refpg's verifiers, and a
deliberately broken copy of each piece fails. Runs only when the optional torch extra
is installed (pip install -e ".[torch]"); skipped otherwise."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytestmark = pytest.mark.torch

from refpg.verify.estimators import verify_estimator  # noqa: E402
from refpg.verify.returns import verify_gae  # noqa: E402
from refpg.verify.trpo_step import verify_trpo_step  # noqa: E402

PATH = Path(__file__).resolve().parents[1] / "examples" / "torch_pg.py"
spec = importlib.util.spec_from_file_location("torch_pg", PATH)
ex = importlib.util.module_from_spec(spec)
spec.loader.exec_module(ex)


def test_torch_gae_passes_and_a_cleanrl_style_truncation_fails():
    assert verify_gae(ex.gae, layout="time_major").passed

    def truncation_as_termination(rewards, values, next_values, terminated, truncated,
                                  gamma, lam):
        done = np.asarray(terminated) | np.asarray(truncated)
        return ex.gae(rewards, values, next_values, done, np.zeros_like(done), gamma, lam)

    rep = verify_gae(truncation_as_termination, layout="time_major")
    assert not rep.passed and "cleanrl" in str(rep)     # the report names the convention
    assert verify_gae(truncation_as_termination, layout="time_major", preset="cleanrl").passed


def test_torch_reinforce_loss_gradient_passes_and_a_sign_slip_fails():
    kw = dict(estimator="reward_to_go", weighting="discounted")
    assert verify_estimator(ex.reinforce_gradient, sign="loss", **kw).passed
    assert not verify_estimator(ex.reinforce_gradient, sign="ascent", **kw).passed


def test_torch_trpo_step_passes_and_a_step_without_the_2_fails():
    assert verify_trpo_step(ex.trpo_step).passed

    def half_kl_step(logits, states, actions, advantages, old_log_probs, max_kl):
        # sqrt(delta / xFx) instead of sqrt(2 delta / xFx): a common slip
        return ex.trpo_step(logits, states, actions, advantages, old_log_probs, max_kl / 2)[0]

    assert not verify_trpo_step(half_kl_step).passed


def test_example_main_exits_zero(capsys):
    assert ex.main() == 0
    assert capsys.readouterr().out.count("PASSED") == 3
