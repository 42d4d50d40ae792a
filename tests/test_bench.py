"""``python -m bench`` knows every benchmark, and the benchmarks still import (they build on the
fakes, whose public names they use; a renamed helper shows up here, not at the next bench run)."""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

import bench.__main__ as bench_cli

BENCH_DIR = Path(bench_cli.__file__).parent
MODULES = sorted(p.stem for p in BENCH_DIR.glob("*.py") if not p.stem.startswith("_"))


def test_every_benchmark_module_is_listed() -> None:
    assert sorted(bench_cli.BENCHMARKS) == MODULES
    assert all(b.module == f"bench.{name}" for name, b in bench_cli.BENCHMARKS.items())


@pytest.mark.parametrize("name", [*MODULES, "_fakes_process", "_fakes_discord"])
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
