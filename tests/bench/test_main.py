"""``python -m bench``'s handling of --output: checked before the runs, written after."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

import bench.__main__ as bench_main
from bench.common import REPO
from bench.render import render


@pytest.fixture
def committed_summary() -> dict[str, Any]:
    return json.loads((REPO / "bench" / "RESULTS.json").read_text())


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch, committed_summary: dict[str, Any]) -> list[bool]:
    """Stand in for the quarter-hour of benchmarks, returning the committed figures."""
    calls: list[bool] = []

    async def run(*_args: object, **_kwargs: object) -> dict[str, Any]:
        calls.append(True)
        return committed_summary

    monkeypatch.setattr(bench_main, "run", run)
    return calls


def test_an_output_in_a_directory_not_yet_made_gets_its_directory(tmp_path: Path) -> None:
    output = tmp_path / "not" / "yet" / "RESULTS.md"
    assert bench_main.prepare_output(output) is None
    assert output.parent.is_dir()


def test_an_output_under_a_file_is_refused_with_the_reason(tmp_path: Path) -> None:
    (tmp_path / "plain").write_text("")
    problem = bench_main.prepare_output(tmp_path / "plain" / "RESULTS.md")
    assert problem is not None
    assert "cannot make its directory" in problem


def test_an_output_that_is_a_directory_is_refused(tmp_path: Path) -> None:
    problem = bench_main.prepare_output(tmp_path)
    assert problem is not None
    assert "is a directory" in problem


@pytest.mark.parametrize("name", ["RESULTS.json", "RESULTS.txt", "RESULTS"])
def test_an_output_not_named_md_is_refused(tmp_path: Path, name: str) -> None:
    """RESULTS.json would be overwritten by the note written after its own summary, and
    `bench.render` renders a summary back to .md, not to .txt."""
    problem = bench_main.prepare_output(tmp_path / name)
    assert problem is not None
    assert "name a .md file" in problem


def test_a_bad_output_stops_the_bench_before_any_run(
    tmp_path: Path, runs: list[bool], capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "plain").write_text("")
    output = tmp_path / "plain" / "RESULTS.md"
    with pytest.raises(SystemExit) as stopped:
        bench_main.main(["--output", str(output)])
    assert stopped.value.code == 2
    assert runs == []
    assert f"--output {output}: cannot make its directory" in capsys.readouterr().err


def test_the_figures_are_written_into_a_new_directory(
    tmp_path: Path, runs: list[bool], committed_summary: dict[str, Any]
) -> None:
    output = tmp_path / "fresh" / "RESULTS.md"
    bench_main.main(["--output", str(output), "--quick"])
    assert runs == [True]
    assert json.loads(output.with_suffix(".json").read_text()) == committed_summary
    assert output.read_text() == render(committed_summary)
