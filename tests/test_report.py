"""`refpg report` and the command line: every section's checks pass, and the runner
turns failures and exceptions into a non-zero exit status (never a crash)."""
import sys
import types

import numpy as np
import pytest

from refpg import cli
from refpg.report import SECTIONS, Check, compare, format_table, run_report


@pytest.mark.parametrize("section", list(SECTIONS))
def test_every_report_section_passes(section):
    checks, _ = run_report([section])
    assert checks, f"section {section} produced no rows"
    failed = [c for c in checks if not c.passed]
    assert not failed, format_table(failed)


def _fake_section(monkeypatch, name, rows=None, error=None):
    module = types.ModuleType(f"_refpg_fake_{name}")

    def checks():
        if error is not None:
            raise error
        return rows

    module.checks = checks
    monkeypatch.setitem(sys.modules, module.__name__, module)
    monkeypatch.setitem(SECTIONS, name, module.__name__)


def test_compare_detects_mismatch_nan_and_shape():
    assert compare("s", "q", "a", "b", [1.0, 2.0], [1.0, 2.0 + 1e-13], 1e-12).passed
    assert not compare("s", "q", "a", "b", [1.0, 2.0], [1.0, 2.1], 1e-12).passed
    assert not compare("s", "q", "a", "b", [np.nan], [1.0], 1e-12).passed
    assert not compare("s", "q", "a", "b", [1.0], [1.0, 1.0], 1e-12).passed
    c = compare("s", "q", "a", "b", [200.0], [100.0], 1.5, relative=True)
    assert c.max_error == pytest.approx(1.0) and c.passed


def test_cli_exit_status(monkeypatch, capsys):
    ok = Check("fake", "q", "r1", "r2", 0.0, 1e-12, True)
    bad = Check("fake", "q", "r1", "r2", 1.0, 1e-12, False)
    _fake_section(monkeypatch, "fake_ok", rows=[ok])
    _fake_section(monkeypatch, "fake_bad", rows=[ok, bad])
    _fake_section(monkeypatch, "fake_raises", error=RuntimeError("boom"))
    _fake_section(monkeypatch, "fake_empty", rows=[])
    assert cli.main(["report", "--section", "fake_ok"]) == 0
    assert cli.main(["report", "--section", "fake_bad"]) == 1
    assert cli.main(["report", "--section", "fake_raises"]) == 1
    out = capsys.readouterr().out
    assert "boom" in out and "FAIL" in out
    assert cli.main(["report", "--section", "fake_empty"]) == 1
    assert cli.main(["report", "--section", "no_such_section"]) == 2
