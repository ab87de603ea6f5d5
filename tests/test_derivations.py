"""The derivation notes cannot drift from the code.

* every ```python block of every note in derivations/ is executed, in order,
  in one namespace per note; blocks with ``>>>`` are doctests, so a number a
  note shows is the number the code computes;
* every ``derivations/<note>.md#<anchor>`` cited anywhere in refpg/ points to
  an existing note and heading;
* every public function and class (in a module's ``__all__``) cites a
  derivation anchor in its own docstring (infrastructure modules excepted).
"""
import doctest
import importlib
import inspect
import pkgutil
import re
from pathlib import Path

import numpy as np
import pytest

import refpg

ROOT = Path(__file__).resolve().parents[1]
NOTES = sorted((ROOT / "derivations").glob("*.md"))
SRC = Path(refpg.__file__).resolve().parent
CITE = re.compile(r"derivations/([A-Za-z0-9_\-]+\.md)(?:#([A-Za-z0-9_\-]+))?")
FENCE = re.compile(r"^```python[^\n]*\n(.*?)^```", re.S | re.M)
#: modules that are plumbing, not mathematics: no derivation anchor required.
NO_ANCHOR_MODULES = {"refpg.validation", "refpg.cli", "refpg.report"}


def slug(heading):
    """GitHub's heading anchor: lower case, punctuation dropped, spaces to hyphens."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def anchors(note):
    return {slug(m.group(1)) for m in re.finditer(r"^#+\s+(.*)$", note.read_text(), re.M)}


def test_there_are_notes():
    assert NOTES, "derivations/ holds no notes"


@pytest.mark.parametrize("note", NOTES, ids=[n.name for n in NOTES])
def test_code_blocks_in_note_run_and_show_the_numbers_the_code_computes(note):
    text = note.read_text()
    namespace = {"np": np, "refpg": refpg}
    parser = doctest.DocTestParser()
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE)
    for k, m in enumerate(FENCE.finditer(text)):
        block = m.group(1)
        line = text[: m.start()].count("\n") + 2
        if ">>>" in block:
            test = parser.get_doctest(block, namespace, f"{note.name}[block {k}]",
                                      str(note), line)
            out = []
            with np.printoptions(precision=8, suppress=True):
                result = runner.run(test, out=out.append, clear_globs=False)
            assert result.failed == 0, "".join(out)
            namespace.update(test.globs)  # DocTest copies its globals; carry them on
        else:
            exec(compile(block, f"{note.name}:{line}", "exec"), namespace)


def _modules():
    yield refpg
    for info in pkgutil.walk_packages(refpg.__path__, "refpg."):
        yield importlib.import_module(info.name)


def test_every_cited_derivation_anchor_exists():
    notes = {n.name: anchors(n) for n in NOTES}
    missing = []
    for path in SRC.rglob("*.py"):
        for m in CITE.finditer(path.read_text()):
            note, anchor = m.group(1), m.group(2)
            if note not in notes:
                missing.append(f"{path.relative_to(ROOT)}: no note derivations/{note}")
            elif anchor and anchor not in notes[note]:
                missing.append(f"{path.relative_to(ROOT)}: no heading #{anchor} in {note}")
    assert not missing, "\n".join(sorted(set(missing)))


def test_every_public_symbol_cites_a_derivation():
    lacking = []
    for module in _modules():
        name = module.__name__
        if name == "refpg" or any(name == m or name.startswith(m + ".")
                                  for m in NO_ANCHOR_MODULES):
            continue
        for sym in getattr(module, "__all__", []):
            obj = getattr(module, sym)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)):
                continue
            if getattr(obj, "__module__", name) != name:
                continue  # re-export: checked where it is defined
            doc = inspect.getdoc(obj) or ""
            if not CITE.search(doc):
                lacking.append(f"{name}.{sym}")
    assert not lacking, "public symbols without a derivations/ anchor:\n" + "\n".join(lacking)
