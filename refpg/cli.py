"""Command line: ``refpg report`` (and, from later issues, ``verify`` and ``vectors``).

``refpg report`` runs every identity and gradient check on the built-in
models, prints a table (quantity, route 1, route 2, max error, tolerance,
pass/fail) and exits 1 if any check fails. README.md#quick-start
"""
from __future__ import annotations

import argparse
import sys

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


def build_parser():
    parser = argparse.ArgumentParser(prog="refpg", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("report", help="run every identity and gradient check; exit 1 on failure")
    p.add_argument("--section", action="append",
                   help="run only this section (repeatable)")
    p.set_defaults(func=_report)
    return parser


def main(argv=None):
    """Entry point of the ``refpg`` console command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    return args.func(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
