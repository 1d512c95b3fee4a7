"""bench/RESULTS.md is rendered from the orchestrator's summary: what it derives."""

from __future__ import annotations

import json

from bench.common import REPO
from bench.render import (
    LAG_NOTE,
    _intake_path_ceiling,
    _lag_limit,
    _profile,
    _rebased_floor,
    _sessions_budget,
    render,
)


def test_the_request_path_ceiling_is_derived_from_the_gateway_and_referrals_cpu() -> None:
    runs = [
        {"gateway": 1.0, "referrals": 2.0, "postgresql": 9.0},
        {"gateway": 0.5, "referrals": 3.0, "postgresql": 9.0},
        {"gateway": 1.5, "referrals": 1.0, "postgresql": 9.0},
    ]
    text = _intake_path_ceiling(runs, floor_per_second=2_000, cores=2)
    # Medians 1.00 + 2.00 ms: 2 cores give 2000 / 3 = 667/s (0.33 of 2,000); one
    # referrals process 1000 / 2 = 500/s (0.25). PostgreSQL's share does not count.
    assert "(1.00 + 2.00 ms a referral)" in text
    assert "on 2 cores near 667 referrals/s, 0.33 of the floor" in text
    assert "at most about 500/s on its one core (0.25 of the floor)" in text
    assert "is not enough on its own to reach 0.4" in text


def test_the_ceiling_says_when_moving_the_rest_away_could_meet_the_goal() -> None:
    runs = [{"gateway": 0.5, "referrals": 1.0}]
    text = _intake_path_ceiling(runs, floor_per_second=2_000, cores=2)
    # 2000 / 1.5 = 1,333/s, 0.67 of the floor: above the goal.
    assert "near 1,333 referrals/s, 0.67 of the floor" in text
    assert "That ceiling is above 0.4, so moving the rest away could meet the goal" in text
    assert "not enough" not in text


def test_the_re_based_ratio_is_intake_over_the_floor_with_the_outbox() -> None:
    text = _rebased_floor(300, outbox_floor=1_200, floor=2_400, times_the_cpu=5.25)
    assert "serves 1,200 referrals/s, 0.50 of the bare floor" in text
    assert "Intake is 0.25 of it" in text
    assert "costs 5.2 times its CPU" in text
    assert "would not by itself meet 0.4 either" in text


def test_the_re_based_ratio_says_when_re_basing_would_meet_the_goal() -> None:
    text = _rebased_floor(600, outbox_floor=1_200, floor=2_400, times_the_cpu=2.0)
    assert "Intake is 0.50 of it" in text
    assert "So re-basing the goal on this floor would meet 0.4." in text
    assert "not" not in text.split("Intake is")[1]


def test_the_sessions_budget_is_the_cores_over_the_goal_against_the_run() -> None:
    runs = [{"casework": 20.0, "postgresql": 10.0}, {"casework": 24.0, "postgresql": 12.0}]
    text = _sessions_budget(runs, cores=2, rate=40_000, in_flight=2, batch_p50_ms=50)
    # 20 batches a second on 2 cores: 100 ms a batch; medians 22 + 11 = 33 ms.
    assert "may spend at most about 100 ms per batch" in text
    assert "they spent 33.0 ms, 33% of that, so the goal holds with room" in text


def test_the_sessions_budget_says_when_little_room_or_none_is_left() -> None:
    met = {"rate": 21_000, "in_flight": 2, "batch_p50_ms": 95}
    assert "59% of that, so the goal holds, with little room" in _sessions_budget(
        [{"casework": 40.0, "postgresql": 19.0}], cores=2, **met
    )
    missed = {"rate": 12_000, "in_flight": 2, "batch_p50_ms": 160}
    over = _sessions_budget([{"casework": 40.0, "postgresql": 19.0}], cores=1, **missed)
    assert "at most about 50 ms per batch" in over
    assert "118% of that, more than the budget, so the goal cannot hold" in over


def test_the_sessions_budget_names_the_load_s_ceiling_when_the_cpu_would_allow_the_goal() -> None:
    """Within the CPU budget, but the run missed: 2 batches in flight at a 105 ms p50
    cap the rate near 2 x 1,000 / 0.105 s = 19,048/s, whatever the cores could do."""
    text = _sessions_budget(
        [{"casework": 40.5, "postgresql": 22.0, "gateway": 6.5}],
        cores=2,
        rate=18_986,
        in_flight=2,
        batch_p50_ms=105,
    )
    assert "69.0 ms, 69% of that, so the CPU alone would allow the goal, yet the run missed it" in (
        text
    )
    assert "each would have to finish within 100 ms" in text
    assert "caps the rate near 19,048 sessions/s" in text
    assert "holds" not in text


def test_a_summary_without_the_outbox_floor_renders_without_its_rows() -> None:
    summary = json.loads((REPO / "bench" / "RESULTS.json").read_text())
    intake = summary["results"]["intake"]
    for key in ("floor_outbox", "floor_outbox_cpu", "floor_outbox_drain_seconds"):
        intake.pop(key, None)
    rendered = render(summary)
    assert "| 2 | intake / floor |" in rendered
    assert "floor with the outbox" not in rendered.lower()


def test_the_committed_results_are_what_their_summary_renders() -> None:
    summary = json.loads((REPO / "bench" / "RESULTS.json").read_text())
    rendered = render(summary)
    assert "referrals service, one process, can serve at most about" in rendered
    assert "| 2 | intake / floor with the outbox |" in rendered
    assert (REPO / "bench" / "RESULTS.md").read_text().rstrip("\n") == rendered.rstrip("\n")


def test_each_profiled_service_gets_its_packages_and_hottest_functions() -> None:
    summaries = {
        "referrals": {
            "samples": 800,
            "cpu_seconds": 4.0,
            "groups": [("fastapi", 200, 0.25), ("asyncpg", 160, 0.2)],
            "functions": [(f"f:{n}.py f{n}", 16, 0.02) for n in range(7)],
        }
    }
    lines = _profile(summaries, "intake")
    assert lines[0].startswith("py-spy of each service during one extra intake run")
    assert (
        "- **referrals** (800 samples; 4.0 s of CPU during the run): fastapi 25%, asyncpg 20%"
        in lines
    )
    assert [line for line in lines if line.startswith("  - ")] == [
        f"  - 2% `f:{n}.py f{n}`" for n in range(5)
    ]
    assert _profile({}, "intake") == []


def test_the_lag_s_limit_names_the_outbox_where_most_events_waited() -> None:
    runs = [
        {"most_waiting": {"outbox:referrals": 180, "queue:reporting": 0, "queue:casework": 4}},
        {"most_waiting": {"outbox:referrals": 396, "queue:reporting": 12}},
    ]
    text = _lag_limit(runs)
    assert "the referrals outbox 396, the reporting queue 12, the casework queue 4." in text
    assert "Most waited in the referrals outbox" in text
    assert "the relay is what fell behind, not the consumers" in text


def test_the_lag_s_limit_names_a_queue_when_a_consumer_fell_behind() -> None:
    text = _lag_limit([{"most_waiting": {"outbox:referrals": 3, "queue:reporting": 150}}])
    assert "the reporting queue 150, the referrals outbox 3." in text
    assert "Most waited in the reporting queue: its consumer is what fell behind" in text
    assert "relay is what fell behind" not in text


def test_the_lag_s_limit_says_when_nothing_was_seen_waiting() -> None:
    text = _lag_limit([{"most_waiting": {"outbox:referrals": 0, "queue:reporting": 0}}])
    assert "No event was seen waiting in an outbox or a queue (sampled every 250 ms)" in text
    assert "Most waited" not in text


def test_a_summary_from_before_the_sampling_keeps_the_design_note() -> None:
    assert _lag_limit([{"p99_ms": 600.0}, {"p99_ms": 700.0}]) == LAG_NOTE
