"""Write refpg's golden vectors (one JSON file per quantity) into refpg/vectors/.

Usage: ``python scripts/make_golden_vectors.py [--out DIR]`` (default: the package's
``refpg/vectors`` directory, which is shipped with the package). The vectors are
generated deterministically, so running this twice gives identical files;
``tests/test_vectors.py`` fails if the shipped files are not current.
Equivalent to ``refpg vectors --out DIR``. derivations/verify.md#golden-vectors
"""
from __future__ import annotations

import argparse
from pathlib import Path

from refpg.verify import vectors


def main():
    default = Path(__file__).resolve().parents[1] / "refpg" / "vectors"
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(default), help=f"output directory (default {default})")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for q in vectors.quantities():
        path = out / f"{q}.json"
        path.write_text(vectors.to_json(vectors.generate(q)))
        print(f"wrote {path}")


if __name__ == "__main__":
    main()
