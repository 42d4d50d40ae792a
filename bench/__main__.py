"""``python -m bench NAME [options]``: run one benchmark (``python -m bench.NAME`` also works)."""

from __future__ import annotations

import importlib
import sys

BENCHMARKS = {
    "streaming": "bench.streaming",
    "store_context": "bench.store_context",
}


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in BENCHMARKS:
        names = ", ".join(BENCHMARKS)
        print(f"usage: python -m bench NAME [options]  (NAME: {names})", file=sys.stderr)
        raise SystemExit(2)
    name = sys.argv[1]
    sys.argv = [f"python -m bench {name}", *sys.argv[2:]]
    importlib.import_module(BENCHMARKS[name]).main()


if __name__ == "__main__":
    main()
