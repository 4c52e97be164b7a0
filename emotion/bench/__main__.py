"""Dispatch `python -m emotion.bench <name> [args]` to emotion.bench.<name>.main(args)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = ("train", "extract", "infer", "gpu", "serve", "cv", "page", "live")


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in BENCHMARKS:
        names = ",".join(BENCHMARKS)
        print(f"usage: python -m emotion.bench {{{names}}} [options]", file=sys.stderr)
        sys.exit(2)
    module = importlib.import_module(f"emotion.bench.{args[0]}")
    module.main(args[1:])


if __name__ == "__main__":
    main()
