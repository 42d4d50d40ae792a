"""``python -m bench`` knows every benchmark, and the benchmarks still import (they build on the
fakes, whose public names they use; a renamed helper shows up here, not at the next bench run)."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import bench.__main__ as bench_cli

BENCH_DIR = Path(bench_cli.__file__).parent
MODULES = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def test_every_benchmark_module_is_listed() -> None:
    assert sorted(bench_cli.BENCHMARKS) == MODULES
    assert all(b.module == f"bench.{name}" for name, b in bench_cli.BENCHMARKS.items())


@pytest.mark.parametrize("name", [*MODULES, "_fakes_process", "_fakes_discord", "_poller_process"])
def test_the_benchmarks_import(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert name.startswith("_") or callable(module.main)


def test_without_a_name_it_lists_how_to_run_each(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_cli.main([]) == 0
    out = capsys.readouterr().out
    for name, bench in bench_cli.BENCHMARKS.items():
        assert f"python -m bench {name} {bench.quick}" in out
    assert "python -m bench all" in out


def test_an_unknown_name_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert bench_cli.main(["nope"]) == 2
    assert "unknown benchmark 'nope'" in capsys.readouterr().err
    assert bench_cli.main(["all", "--chats", "5"]) == 2


def _bench_lines(*args: str) -> list[dict[str, object]]:
    """Run ``python -m bench ...`` in a fresh interpreter; its BENCH lines, parsed."""
    done = subprocess.run(
        [sys.executable, "-m", "bench", *args],
        cwd=BENCH_DIR.parent,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return [json.loads(line[6:]) for line in done.stdout.splitlines() if line.startswith("BENCH ")]


@pytest.mark.e2e
def test_the_shared_poller_benchmark_runs_with_its_quick_options() -> None:
    """Two poller processes on a throwaway PostgreSQL, one killed: no task is polled twice
    in a round, and every task the killed one held is polled again by the other."""
    [line] = _bench_lines("poller_shared", *bench_cli.BENCHMARKS["poller_shared"].quick.split())
    assert line["round_fetched_twice"] == [0]
    assert line["steady"]["fetched_twice"] == 0  # type: ignore[index]
    takeover = line["takeover"]
    assert isinstance(takeover, dict)
    assert takeover["taken_over"] == takeover["held_at_kill"]


@pytest.mark.e2e
@pytest.mark.parametrize(
    ("name", "extra"),
    [
        ("poller", ()),
        ("store_context", ("--backend", "postgresql")),
        ("streaming", ("--backend", "postgresql")),
    ],
)
def test_benchmarks_run_with_their_quick_options(name: str, extra: tuple[str, ...]) -> None:
    """The quick settings still run (a benchmark broken by a change to the code it drives
    shows up here, not at the next measurement)."""
    lines = _bench_lines(name, *bench_cli.BENCHMARKS[name].quick.split(), *extra)
    assert len(lines) == 1
    if "--backend" in extra:
        assert lines[0]["backend"] == "postgresql"
