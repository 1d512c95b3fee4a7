"""``python -m bench.render``: re-renders the RESULTS.md beside a RESULTS.json, and only that."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bench.common import REPO
from bench.render import main, render

COMMITTED = REPO / "bench" / "RESULTS.md"


@pytest.fixture
def summary(tmp_path: Path) -> Path:
    copy = tmp_path / "run" / "RESULTS.json"
    copy.parent.mkdir()
    shutil.copy(REPO / "bench" / "RESULTS.json", copy)
    return copy


def test_help_answers_without_rewriting_the_committed_results(
    capsys: pytest.CaptureFixture[str],
) -> None:
    before = COMMITTED.stat().st_mtime_ns
    with pytest.raises(SystemExit) as exit_:
        main(["--help"])
    assert exit_.value.code == 0
    assert "RESULTS.json" in capsys.readouterr().out
    assert COMMITTED.stat().st_mtime_ns == before


def test_a_named_summary_renders_the_results_beside_it(summary: Path) -> None:
    main([str(summary)])
    written = (summary.parent / "RESULTS.md").read_text()
    assert written == render(json.loads(summary.read_text()))


@pytest.mark.parametrize(
    ("content", "says"),
    [
        (None, "cannot be read"),
        ("{not json", "is not JSON"),
        ('{"results": {}}', "is not a bench summary (it has no 'plan')"),
        ("[1, 2, 3]", "is not a bench summary"),
    ],
)
def test_a_summary_that_is_not_one_is_refused_and_leaves_the_results_alone(
    summary: Path, capsys: pytest.CaptureFixture[str], content: str | None, says: str
) -> None:
    existing = summary.parent / "RESULTS.md"
    existing.write_text("the last good render\n")
    if content is None:
        summary.unlink()
    else:
        summary.write_text(content)
    with pytest.raises(SystemExit) as exit_:
        main([str(summary)])
    assert exit_.value.code == 2
    assert says in capsys.readouterr().err
    assert existing.read_text() == "the last good render\n"


def test_a_path_that_is_not_a_json_summary_is_refused(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    markdown = tmp_path / "RESULTS.md"
    markdown.write_text("kept\n")
    with pytest.raises(SystemExit) as exit_:
        main([str(markdown)])
    assert exit_.value.code == 2
    assert "name the RESULTS.json" in capsys.readouterr().err
    assert markdown.read_text() == "kept\n"
