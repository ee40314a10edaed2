"""The benchmarks at a trivial size: they run, count exactly and print the object of issue 7.

No timings are asserted here; speed is what ``python -m benchmarks`` reports.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks import ingest, writes
from benchmarks.__main__ import FIGURES, Sizes, measure, table, to_json
from storage import wheel

TINY = Sizes(
    nights=1,
    naive_sample=20,
    repetitions=2,
    naive_repetitions=1,
    startups=1,
    days=1,
    years=0.05,
    runs=200,
    web_clients=5,
    web_requests=2,
    web_updates=3,
    mqtt_homes=2,
    mqtt_readings=50,
    mqtt_paced_seconds=0.2,
)


async def test_every_figure_at_a_trivial_size(tmp_path: Path) -> None:
    results = await measure(tmp_path, TINY, FIGURES)
    out = json.loads(json.dumps(to_json(results)))
    assert out == {
        "ingest": {
            "notifications": results.ingest.notifications,
            "per_s": pytest.approx(results.ingest.per_s, abs=0.1),
            "naive_per_s": pytest.approx(results.ingest.naive_per_s, abs=0.1),
            "ratio": pytest.approx(results.ingest.ratio, abs=0.1),
            "commits": results.ingest.commits,
        },
        "query": {
            "minutes_rows": 18 * 480,
            "race_p95_ms": pytest.approx(results.query.race_p95_ms, abs=0.001),
            "summary_p95_ms": pytest.approx(results.query.summary_p95_ms, abs=0.001),
            "naive_race_p95_ms": pytest.approx(results.query.naive_race_p95_ms, abs=0.001),
        },
        "startup": {
            "ready_s": pytest.approx(results.startup.ready_s, abs=0.001),
            "rss_mb": pytest.approx(results.startup.rss_mb, abs=0.1),
        },
        "writes": {
            "commits_per_hour_running": pytest.approx(
                results.writes.commits_per_hour_running, abs=0.01
            ),
            "commits_per_hour_idle": 0.0,
            "durable_commit_ms": pytest.approx(results.writes.durable_commit_ms, abs=0.001),
            "normal_commit_ms": pytest.approx(results.writes.normal_commit_ms, abs=0.001),
        },
        "web": {
            "clients": 5,
            "api_hamsters_p95_ms": pytest.approx(results.web.hamsters_p95_ms, abs=0.01),
            "page_p95_ms": pytest.approx(results.web.page_p95_ms, abs=0.01),
            "live_clients": 5,
            "live_updates": 3,
            "live_clients_saw_every_update": 5,
            "live_delivery_p95_ms": pytest.approx(results.web.delivery_p95_ms, abs=0.01),
            "live_delivery_max_ms": pytest.approx(results.web.delivery_max_ms, abs=0.01),
            "loop_lag_max_ms": pytest.approx(results.web.lag_max_ms, abs=0.01),
            "loop_lag_p99_ms": pytest.approx(results.web.lag_p99_ms, abs=0.01),
            "quiet_loop_lag_max_ms": pytest.approx(results.web.quiet_lag_max_ms, abs=0.01),
            "rss_added_mb": pytest.approx(results.web.rss_added_mb, abs=0.1),
            "commits_per_1000_views": 0.0,
        },
        "mqtt": {
            "readings": 100,
            "per_s": pytest.approx(results.mqtt.per_s, abs=0.1),
            "bot_cpu_us": pytest.approx(results.mqtt.bot_cpu_us, abs=0.01),
            "paced_per_s": pytest.approx(results.mqtt.paced_per_s, abs=0.1),
            "core_share_1000_homes": pytest.approx(results.mqtt.core_share_paced, abs=0.0001),
            "spool_write_us": pytest.approx(results.mqtt.spool_write_us, abs=0.01),
        },
    }
    # Ten hours at 1 Hz, plus every 997th notification delivered twice.
    assert results.ingest.notifications == 36_000 + 36_000 // 996
    assert results.ingest.credited == results.ingest.truth > 0
    assert results.ingest.naive_notifications == TINY.naive_sample
    assert results.writes.credited == results.writes.truth > 0
    assert results.mqtt.credited == results.mqtt.truth == 2 * 2 * 49
    assert results.writes.idle_hours > 0 and results.writes.running_hours > 0
    assert len(results.query.race) == len(results.query.naive_race) == 11
    assert all(len(t.samples) == TINY.repetitions for t in results.query.race)
    assert not results.startup.matplotlib_loaded
    assert "budget" in table(results, 1.0)


async def test_ingest_refuses_a_pipeline_that_loses_a_revolution(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    exact = wheel.spread_credit

    def lossy(credit: wheel.Credit) -> list[tuple[int, int]]:
        buckets = exact(credit)
        minute, revolutions = buckets[0]
        return [(minute, revolutions - 1), *buckets[1:]] if revolutions > 1 else buckets

    monkeypatch.setattr(wheel, "spread_credit", lossy)
    with pytest.raises(AssertionError, match="counted wrong"):
        await ingest.run(tmp_path, nights=1, naive_sample=2)


def test_hours_are_idle_only_after_the_last_flush() -> None:
    start = 10 * writes.HOUR
    kinds = writes.classify_hours(
        [start + 30, start + 2 * writes.HOUR + 3590], start, start + 5 * writes.HOUR, 60
    )
    assert list(kinds.values()) == ["startup", "idle", "running", "tail", "idle"]
