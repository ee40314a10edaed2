"""``python -m benchmarks [--quick] [--json] [--only NAME ...]``: measure, compare with the naive baselines, print.

``--json`` prints exactly one JSON object on stdout (the shape in issue 7); progress goes to stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks import ingest, mqtt, query, startup, web, writes

log = logging.getLogger("benchmarks")

FIGURES = ("ingest", "query", "startup", "writes", "web", "mqtt")


@dataclass(frozen=True, slots=True)
class Sizes:
    nights: int  # ingest: nights of 1 Hz notifications (10 h each)
    naive_sample: int  # ingest: notifications committed one by one
    repetitions: int  # query: per /race period (and for the morning report)
    naive_repetitions: int  # query: per period of the minute-scan baseline
    startups: int
    days: int  # writes: simulated days
    years: float = query.YEARS  # query: history in the database
    runs: int = query.RUNS
    web_clients: int = 200  # web: concurrent clients and open live connections
    web_requests: int = 20  # web: requests per client per path
    web_updates: int = 50  # web: revolutions at 5 rev/s while the live connections are open
    mqtt_homes: int = 50  # mqtt: gateways (one wheel each) publishing through one broker
    mqtt_readings: int = 2000  # mqtt: readings per home
    mqtt_paced_seconds: float = 20.0  # mqtt: 1,000 readings/s for this long


FULL = Sizes(
    nights=365, naive_sample=5000, repetitions=100, naive_repetitions=50, startups=5, days=14
)
# About a million notifications; finishes well within two minutes on two cores.
QUICK = Sizes(
    nights=28,
    naive_sample=2000,
    repetitions=50,
    naive_repetitions=20,
    startups=3,
    days=3,
    web_requests=5,
    web_updates=25,
    mqtt_homes=20,
    mqtt_readings=1000,
    mqtt_paced_seconds=5.0,
)


@dataclass
class Results:
    ingest: ingest.IngestResult | None = None
    query: query.QueryResult | None = None
    startup: startup.StartupResult | None = None
    writes: writes.WritesResult | None = None
    web: web.WebResult | None = None
    mqtt: mqtt.MqttResult | None = None


async def measure(workdir: Path, sizes: Sizes, only: tuple[str, ...]) -> Results:
    results = Results()
    if "ingest" in only:
        log.info("ingest: %d nights at 1 Hz ...", sizes.nights)
        results.ingest = await ingest.run(
            workdir, nights=sizes.nights, naive_sample=sizes.naive_sample
        )
    if "query" in only:
        log.info("query: building %g years of nights and timing /race ...", sizes.years)
        results.query = await query.run(
            workdir,
            repetitions=sizes.repetitions,
            naive_repetitions=sizes.naive_repetitions,
            years=sizes.years,
            runs=sizes.runs,
        )
    if "startup" in only:
        log.info("startup: %d starts of hamsterbot run ...", sizes.startups)
        results.startup = await startup.run(workdir, repetitions=sizes.startups)
    if "writes" in only:
        log.info("writes: %d simulated days ...", sizes.days)
        results.writes = await writes.run(workdir, days=sizes.days)
    if "web" in only:
        log.info(
            "web: %d clients, then %d live connections ...", sizes.web_clients, sizes.web_clients
        )
        results.web = await web.run(
            workdir,
            clients=sizes.web_clients,
            requests=sizes.web_requests,
            updates=sizes.web_updates,
        )
    if "mqtt" in only:
        log.info(
            "mqtt: %d homes x %d readings through Mosquitto ...",
            sizes.mqtt_homes,
            sizes.mqtt_readings,
        )
        results.mqtt = await mqtt.run(
            workdir,
            homes=sizes.mqtt_homes,
            readings_per_home=sizes.mqtt_readings,
            paced_seconds=sizes.mqtt_paced_seconds,
        )
    return results


def to_json(results: Results) -> dict:
    """The object of issue 7; a figure that was not measured is null."""
    out: dict = {
        "ingest": None,
        "query": None,
        "startup": None,
        "writes": None,
        "web": None,
        "mqtt": None,
    }
    if results.ingest:
        r = results.ingest
        out["ingest"] = {
            "notifications": r.notifications,
            "per_s": round(r.per_s, 1),
            "naive_per_s": round(r.naive_per_s, 1),
            "ratio": round(r.ratio, 1),
            "commits": r.commits,
        }
    if results.query:
        q = results.query
        out["query"] = {
            "minutes_rows": q.minutes_rows,
            "race_p95_ms": round(q.race_p95_ms, 3),
            "summary_p95_ms": None if q.summary_p95_ms is None else round(q.summary_p95_ms, 3),
            "naive_race_p95_ms": round(q.naive_race_p95_ms, 3),
        }
    if results.startup:
        s = results.startup
        out["startup"] = {"ready_s": round(s.ready_s, 3), "rss_mb": round(s.rss_mb, 1)}
    if results.writes:
        w = results.writes
        out["writes"] = {
            "commits_per_hour_running": round(w.commits_per_hour_running, 2),
            "commits_per_hour_idle": round(w.commits_per_hour_idle, 2),
            "durable_commit_ms": round(w.durable_commit_ms, 3),
            "normal_commit_ms": round(w.normal_commit_ms, 3),
        }
    if results.web:
        b = results.web
        out["web"] = {
            "clients": b.clients,
            "api_hamsters_p95_ms": round(b.hamsters_p95_ms, 2),
            "page_p95_ms": round(b.page_p95_ms, 2),
            "live_clients": b.live_clients,
            "live_updates": b.updates,
            "live_clients_saw_every_update": b.clients_saw_every_update,
            "live_delivery_p95_ms": round(b.delivery_p95_ms, 2),
            "live_delivery_max_ms": round(b.delivery_max_ms, 2),
            "loop_lag_max_ms": round(b.lag_max_ms, 2),
            "loop_lag_p99_ms": round(b.lag_p99_ms, 2),
            "quiet_loop_lag_max_ms": round(b.quiet_lag_max_ms, 2),
            "rss_added_mb": round(b.rss_added_mb, 1),
            "commits_per_1000_views": round(b.commits_per_1000_views, 2),
        }
    if results.mqtt:
        m = results.mqtt
        out["mqtt"] = {
            "readings": m.readings,
            "per_s": round(m.per_s, 1),
            "bot_cpu_us": round(m.bot_cpu_us, 2),
            "paced_per_s": round(m.paced_per_s, 1),
            "core_share_1000_homes": round(m.core_share_paced, 4),
            "spool_write_us": round(m.spool_write_us, 2),
        }
    return out


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{os.cpu_count()} CPUs ({cpu}), Python {platform.python_version()}, {platform.system()}"


def _verdict(ok: bool) -> str:
    return "ok" if ok else "MISSED"


def table(results: Results, seconds: float) -> str:
    lines = [f"hamsterbot benchmarks on {machine()}, {seconds:.0f} s", ""]
    if results.ingest:
        r = results.ingest
        lines += [
            "ingest (capture -> parse -> decode -> count -> buckets -> flush)",
            f"  notifications        {r.notifications:>14,}   credited {r.credited:,} = truth {r.truth:,}",
            f"  pipeline             {r.per_s:>14,.0f} /s   ({r.cpu_us:.1f} us CPU each)",
            f"  naive (commit each)  {r.naive_per_s:>14,.0f} /s   on {r.naive_notifications:,}"
            " (Database.transaction: BEGIN IMMEDIATE, INSERT, COMMIT)",
            f"  ratio                {r.ratio:>14.1f} x   budget >= 50x: {_verdict(r.ratio >= 50)}",
            f"  bare aiosqlite       {r.bare_per_s:>14,.0f} /s   (execute + commit, no lock):"
            f" ratio {r.per_s / r.bare_per_s if r.bare_per_s else 0:.1f} x",
            f"  commits              {r.commits:>14,}",
            "",
        ]
    if results.query:
        q = results.query
        lines += [
            f"query ({q.minutes_rows:,} minute rows; built in {q.build_s:.1f} s)",
            "  /race period           p50 ms   p95 ms   naive p50   naive p95",
        ]
        for fast, naive in zip(q.race, q.naive_race, strict=True):
            lines.append(
                f"  {fast.name:<18} {fast.p50_ms:>9.2f} {fast.p95_ms:>8.2f} "
                f"{naive.p50_ms:>11.2f} {naive.p95_ms:>11.2f}"
            )
        speedup = q.naive_race_p95_ms / q.race_p95_ms
        lines.append(
            f"  all periods p95    {q.race_p95_ms:>18.2f} {q.naive_race_p95_ms:>20.2f}"
            f"   {speedup:.0f}x; budget <= 1 ms and >= 60x: "
            f"{_verdict(q.race_p95_ms <= 1 and speedup >= 60)}"
        )
        if q.summary is not None:
            lines.append(
                f"  morning report     {q.summary.p50_ms:>9.2f} {q.summary.p95_ms:>8.2f}"
                f"   budget <= 1.5 ms and >= 60x the naive /race: "
                f"{_verdict(q.summary.p95_ms <= 1.5 and q.naive_race_p95_ms >= 60 * q.summary.p95_ms)}"
            )
        else:
            lines.append("  morning report     not measured (bot.core.summary not there yet)")
        lines.append("")
    if results.startup:
        s = results.startup
        each = ", ".join(f"{x.ready_s:.2f} s/{x.rss_mb:.0f} MB" for x in s.samples)
        lines += [
            "startup (hamsterbot run, Telegram + Discord fakes, simulated wheel)",
            f"  ready                {s.ready_s:>14.2f} s    budget <= 2 s: {_verdict(s.ready_s <= 2)}",
            f"  RSS when ready       {s.rss_mb:>14.1f} MB   budget <= 110 MB: {_verdict(s.rss_mb <= 110)}",
            f"  matplotlib loaded    {s.matplotlib_loaded!s:>14}      ({each})",
            "",
        ]
    if results.writes:
        w = results.writes
        lines += [
            f"writes ({w.days} simulated days, {w.notifications:,} notifications, flush every 60 s)",
            f"  running              {w.commits_per_hour_running:>14.2f} commits/h over {w.running_hours} h",
            f"  idle                 {w.commits_per_hour_idle:>14.2f} commits/h over {w.idle_hours} h"
            f"   budget 0: {_verdict(w.commits_per_hour_idle == 0)}",
            f"  startup hour         {w.startup_commits:>14} commits (connected + baseline)",
            f"  credited             {w.credited:>14,} = truth {w.truth:,}",
            f"  durable commit       {w.durable_commit_ms:>14.2f} ms median (a run, a setting: WAL fsynced)",
            f"  normal commit        {w.normal_commit_ms:>14.2f} ms median (a wheel flush: synced at checkpoints)",
            "",
        ]
    if results.web:
        b = results.web
        every = b.clients_saw_every_update == b.live_clients
        lines += [
            f"web (the public page, a child process; {b.clients} concurrent clients on loopback)",
            f"  /api/hamsters        p50 {b.hamsters_p50_ms:>7.1f} ms   p95 {b.hamsters_p95_ms:>7.1f} ms",
            f"  /                    p50 {b.page_p50_ms:>7.1f} ms   p95 {b.page_p95_ms:>7.1f} ms",
            f"  live                 {b.clients_saw_every_update}/{b.live_clients} clients saw all"
            f" {b.updates} updates at 5 rev/s: {_verdict(every)}",
            f"  revolution -> page   p95 {b.delivery_p95_ms:>7.1f} ms   max {b.delivery_max_ms:>7.1f} ms"
            f"   budget < 2 s: {_verdict(b.delivery_max_ms < 2000)}",
            f"  event-loop lag       max {b.lag_max_ms:>7.1f} ms   p99 {b.lag_p99_ms:>7.1f} ms"
            f"   budget < 50 ms: {_verdict(b.lag_max_ms < 50)}",
            f"  lag, nobody watching max {b.quiet_lag_max_ms:>7.1f} ms   p99 {b.quiet_lag_p99_ms:>7.1f} ms"
            " (the machine itself)",
            f"  RSS added            {b.rss_added_mb:>14.1f} MB   budget <= 15 MB:"
            f" {_verdict(b.rss_added_mb <= 15)}",
            f"  commits              {b.commits_per_1000_views:>14.2f} per 1,000 page views"
            f" ({b.page_views:,} views)   budget 0: {_verdict(b.commits == 0)}",
            "",
        ]
    if results.mqtt:
        m = results.mqtt
        share = m.core_share_paced
        lines += [
            f"mqtt (gateways -> Mosquitto -> bot pipelines; {m.homes} homes, {m.readings:,} readings)",
            f"  end to end           {m.per_s:>14,.0f} /s   credited {m.credited:,} = truth {m.truth:,}",
            f"  bot CPU              {m.bot_cpu_us:>14.1f} us per reading at that pace",
            f"  1,000 readings/s     {share:>14.1%} of one core for the bot, over {m.paced_seconds:.0f} s"
            f" ({m.paced_per_s:,.0f}/s arrived)   budget < 10%: {_verdict(share < 0.10)}",
            f"  gateway spool write  {m.spool_write_us:>14.1f} us per reading (committed INSERT)",
            "",
        ]
    return "\n".join(lines)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="about a million notifications")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--only", nargs="+", choices=FIGURES, default=list(FIGURES))
    parser.add_argument("--workdir", type=Path, help="keep the databases and capture here")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    # The pipeline logs sensor events, the fakes every request: progress lines only.
    for noisy in ("bot", "storage", "sensors", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    # The fakes log an error when a stopping bot drops its long poll mid-request.
    logging.getLogger("aiohttp.server").setLevel(logging.CRITICAL)
    sizes = QUICK if args.quick else FULL
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="hamsterbot-bench-") as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        results = asyncio.run(measure(workdir, sizes, tuple(args.only)))
    seconds = time.perf_counter() - started
    if args.json:
        print(json.dumps(to_json(results)))
    else:
        print(table(results, seconds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
