"""``python -m bench``: list the benchmarks and how to run them.

- ``python -m bench NAME [options]`` runs one (the same as ``python -m bench.NAME``; ``--help``
  for its options);
- ``python -m bench all`` runs every one with its default settings, one after the other, each in
  its own process so that none inherits another's heap, loop or logging. Those are the settings
  of the figures in ``docs/benchmarks.md``; the whole run takes a few minutes.
"""

from __future__ import annotations

import importlib
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Benchmark:
    module: str
    what: str
    quick: str  # options for a run of a few seconds, to try it out


BENCHMARKS = {
    "streaming": Benchmark(
        "bench.streaming",
        "200 chats streaming at once through the real Telegram (or Discord) adapter",
        "--chats 5 --tokens 10 --seconds 1",
    ),
    "poller": Benchmark(
        "bench.poller",
        "the task poller with 10,000 Midjourney tasks in flight",
        "--tasks 100 --steps 5 --cold-cycles 1 --seconds 2",
    ),
    "poller_shared": Benchmark(
        "bench.poller_shared",
        "two poller processes sharing 10,000 Midjourney tasks on one PostgreSQL",
        "--tasks 200 --rounds 1 --seconds 1 --lease 1 --grace 1",
    ),
    "chat_images": Benchmark(
        "bench.chat_images",
        "one chat answer carrying a 1 MB base64 image, through the real Telegram adapter",
        "--mb 0.2",
    ),
    "store_context": Benchmark(
        "bench.store_context",
        "Store.recent_turns on 100,000 turns (SQLite; --backend postgresql or both)",
        "--turns 2000 --others 5 --other-turns 200 --calls 100",
    ),
}


def usage() -> str:
    lines = ["Benchmarks (figures and how to read them: docs/benchmarks.md):", ""]
    for name, bench in BENCHMARKS.items():
        lines.append(f"  {name:<14} {bench.what}")
        lines.append(f"  {'':<14} a quick try: python -m bench {name} {bench.quick}")
    lines += [
        "",
        "python -m bench NAME [options]   run one (python -m bench NAME --help: its options)",
        "python -m bench all              run every one with its default settings (minutes)",
    ]
    return "\n".join(lines)


def run_all() -> int:
    """Each benchmark in a fresh interpreter; 1 if any failed or missed its target."""
    failed = []
    for name, bench in BENCHMARKS.items():
        print(f"\n== python -m {bench.module}", flush=True)
        code = subprocess.run([sys.executable, "-m", bench.module], cwd=ROOT, check=False)
        if code.returncode != 0:
            failed.append(f"{name} (exit {code.returncode})")
    print("\n== all benchmarks ran" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(usage())
        return 0
    name = args[0]
    if name == "all":
        if len(args) > 1:
            print("python -m bench all takes no options (each runs with its defaults)")
            return 2
        return run_all()
    if name not in BENCHMARKS:
        print(f"unknown benchmark {name!r}\n\n{usage()}", file=sys.stderr)
        return 2
    sys.argv = [f"python -m bench {name}", *args[1:]]
    result = importlib.import_module(BENCHMARKS[name].module).main()
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
