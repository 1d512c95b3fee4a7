"""``pathways simulate`` and ``pathways demo`` as commands: documented options, bad
options refused before anything is sent."""

from __future__ import annotations

from datetime import date, timedelta

from typer.testing import CliRunner

from pathways.cli import app
from pathways.sandbox import free_port

runner = CliRunner()


def test_simulate_documents_every_option() -> None:
    result = runner.invoke(app, ["simulate", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in (
        "--people",
        "--seed",
        "--gateway-url",
        "--admin-token",
        "--concurrency",
        "--as-of",
        "--programme",
        "--report-timeout",
        "--progress",
    ):
        assert option in result.output, option


def test_demo_documents_every_option() -> None:
    result = runner.invoke(app, ["demo", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    for option in ("--people", "--seed", "--concurrency", "--as-of", "--keep-running"):
        assert option in result.output, option
    assert "Ctrl-C" in result.output


def test_a_future_as_of_is_refused() -> None:
    tomorrow = (date.today() + timedelta(days=2)).isoformat()
    result = runner.invoke(app, ["simulate", "--as-of", tomorrow, "--admin-token", "x"])
    assert result.exit_code == 2
    assert "future" in result.output


def test_a_malformed_as_of_or_people_is_refused() -> None:
    assert (
        runner.invoke(app, ["simulate", "--as-of", "23/11/2026", "--admin-token", "x"]).exit_code
        == 2
    )
    assert runner.invoke(app, ["simulate", "--people", "0", "--admin-token", "x"]).exit_code == 2


def test_simulate_without_a_gateway_says_how_to_start_one() -> None:
    result = runner.invoke(
        app,
        [
            "simulate",
            "--people",
            "5",
            "--gateway-url",
            f"http://127.0.0.1:{free_port()}",
            "--admin-token",
            "x",
            "--no-progress",
        ],
    )
    assert result.exit_code == 2
    assert "make run" in result.output
