"""Command line: ``refpg report``, ``refpg verify`` and ``refpg vectors``.

* ``refpg report`` runs every identity and gradient check on the built-in
  models, prints a table (quantity, route 1, route 2, max error, tolerance,
  pass/fail) and exits 1 if any check fails. README.md#quick-start
* ``refpg verify <quantity> module:function [--option value ...]`` imports the
  user's function (a dotted module importable from the current directory, or
  a path to a ``.py`` file), runs refpg's verifier of that quantity, prints
  the report and exits 0 (passed) or 1 (failed), so it can sit in a user's CI.
  The options are the verifier's keyword arguments (``refpg verify gae --help``
  lists them). ``--json`` prints the report as JSON.
* ``refpg vectors --out DIR`` writes the golden vectors (one JSON file per
  quantity) to ``DIR``.

Exit status 2 means a usage error (unknown quantity, function not found).
"""
from __future__ import annotations

import argparse
import inspect
import sys
from pathlib import Path

__all__ = ["main"]


def _report(args):
    from .report import SECTIONS, format_table, run_report

    sections = args.section or None
    if sections:
        unknown = [s for s in sections if s not in SECTIONS]
        if unknown:
            print(f"refpg report: unknown section(s) {unknown}; choose from {list(SECTIONS)}",
                  file=sys.stderr)
            return 2
    checks, seconds = run_report(sections)
    print(format_table(checks))
    print(f"time: {seconds:.1f} s")
    if not checks:
        print("refpg report: no checks ran", file=sys.stderr)
        return 1
    return 0 if all(c.passed for c in checks) else 1


def _parse_bool(text):
    low = str(text).lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false; got {text!r}")


def _parse_auto(text):
    """For options whose default is None: int, float, true/false, else the string."""
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    return text


def _option_type(default):
    if isinstance(default, bool):
        return _parse_bool
    if isinstance(default, int):
        return int
    if isinstance(default, float):
        return float
    if isinstance(default, str):
        return str
    return _parse_auto


def _verify_parser(quantity, fn):
    parser = argparse.ArgumentParser(
        prog=f"refpg verify {quantity}",
        description=(inspect.getdoc(fn) or "").split("\n\n")[0])
    parser.add_argument("function", help="your implementation: module:function or file.py:function")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    for name, p in inspect.signature(fn).parameters.items():
        if p.kind is not inspect.Parameter.KEYWORD_ONLY:
            continue
        parser.add_argument(f"--{name}", dest=name, type=_option_type(p.default),
                            default=p.default, help=f"default: {p.default!r}")
    return parser


def _verify(argv):
    from .verify.core import load_callable
    from .verify.registry import VERIFIERS, verifier

    if not argv or argv[0] in ("-h", "--help"):
        print("usage: refpg verify <quantity> module:function [--option value ...]\n\n"
              "quantities: " + ", ".join(sorted(VERIFIERS)) + "\n"
              "'refpg verify <quantity> --help' lists the options of one quantity.")
        return 0 if argv else 2
    quantity, rest = argv[0], argv[1:]
    if quantity not in VERIFIERS:
        print(f"refpg verify: unknown quantity {quantity!r}; choose from {sorted(VERIFIERS)}",
              file=sys.stderr)
        return 2
    fn = verifier(quantity)
    parser = _verify_parser(quantity, fn)
    try:
        args = parser.parse_args(rest)
    except SystemExit as exc:
        return int(exc.code or 0)
    try:
        user = load_callable(args.function)
    except ValueError as exc:
        print(f"refpg verify: {exc}", file=sys.stderr)
        return 2
    options = {k: v for k, v in vars(args).items() if k not in ("function", "json")}
    try:
        report = fn(user, **options)
    except (ValueError, TypeError) as exc:   # refpg's own argument errors, not the user's code
        print(f"refpg verify: {exc}", file=sys.stderr)
        return 2
    print(report.to_json(indent=1) if args.json else str(report))
    return 0 if report.passed else 1


def _vectors(args):
    from .verify import vectors

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    names = args.quantity or vectors.quantities()
    for q in names:
        path = out / f"{q}.json"
        path.write_text(vectors.to_json(vectors.generate(q)))
        print(f"wrote {path}")
    return 0


def build_parser():
    parser = argparse.ArgumentParser(prog="refpg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("report", help="run every identity and gradient check; exit 1 on failure")
    p.add_argument("--section", action="append", help="run only this section (repeatable)")
    p.set_defaults(func=_report)
    sub.add_parser("verify", add_help=False,
                   help="verify your implementation of a quantity: refpg verify <quantity> "
                        "module:function [options]; exit 1 on failure")
    p = sub.add_parser("vectors", help="write the golden vectors (JSON) to a directory")
    p.add_argument("--out", required=True, help="output directory")
    p.add_argument("--quantity", action="append", help="only this quantity (repeatable)")
    p.set_defaults(func=_vectors)
    return parser


def main(argv=None):
    """Entry point of the ``refpg`` console command; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv and argv[0] == "verify":
        return _verify(argv[1:])
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
