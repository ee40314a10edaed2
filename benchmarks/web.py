"""The public page under load: request latency, live connections, event-loop lag, memory, commits.

The server is a child process (``python -m benchmarks.web --serve DB``): the real runtime on a real database, the
real ``start_web``, and the real wheel pipeline fed one revolution per notification at 5 rev/s when told. It
measures what only it can see: RSS before and after the page starts (``/proc``), the lag of its own event loop
(a task that sleeps 10 ms and notes how late it wakes), and its database's commit count. This process is the
crowd, on loopback:

- ``/api/hamsters`` and ``/``: ``clients`` concurrent clients, ``requests`` requests each, p50/p95 latency;
- live: ``clients`` open ``/api/live`` connections while the wheel turns at 5 rev/s; every client must see every
  update (each revolution's figure), and the child's loop lag during that phase must stay under 50 ms;
- commits per 1,000 page views: the child's commit count around the request phases (budget 0).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import p50, p95, rss_mb

REV_PER_S = 5.0
LAG_TICK_S = 0.01
ROOT = Path(__file__).resolve().parent.parent  # where ``benchmarks`` is importable


@dataclass(frozen=True, slots=True)
class WebResult:
    clients: int
    hamsters_p50_ms: float
    hamsters_p95_ms: float
    page_p50_ms: float
    page_p95_ms: float
    page_views: int
    commits: int
    live_clients: int
    updates: int
    clients_saw_every_update: int
    delivery_p95_ms: float  # a revolution fed in the child -> its figure read by a client
    delivery_max_ms: float
    lag_max_ms: float
    lag_p99_ms: float
    quiet_lag_max_ms: float  # the same wheel with no viewer: what the machine itself adds
    quiet_lag_p99_ms: float
    rss_added_mb: float

    @property
    def commits_per_1000_views(self) -> float:
        return 1000 * self.commits / self.page_views if self.page_views else 0.0


# --- the child: the bot's runtime with the page ------------------------------------------------------


class LagMonitor:
    def __init__(self) -> None:
        self.samples: list[float] = []
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self.samples = []
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(LAG_TICK_S)
            self.samples.append(max(0.0, time.perf_counter() - started - LAG_TICK_S))

    async def stop(self) -> list[float]:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        return self.samples


async def serve(database: Path) -> None:
    from bot import app
    from bot import config as config_module
    from sensors.csc import encode_csc_measurement

    config = config_module.parse(
        {
            "bot": {"database": str(database), "timezone": "UTC", "units": "km"},
            # 5 rev/s on a 20 cm wheel is 11 km/h: above the default speed cap, so raise it.
            "hamsters": [{"name": "Ursula", "wheel_diameter_cm": 20, "max_speed_kmh": 30}],
        }
    )
    runtime = await app.open_runtime(config)
    pipeline = runtime.pipelines["Ursula"]
    await pipeline.claim("benchmarks.web")  # this process counts the wheel it serves
    counter = 1000
    pipeline.feed(encode_csc_measurement(counter, 0), time.time())  # the baseline, before counting
    await pipeline.flush()
    monitor = LagMonitor()

    def say(**fields: object) -> None:
        print(json.dumps(fields), flush=True)

    try:
        before = rss_mb()
        url = await app.start_web(runtime, config_module.WebSettings(port=0))
        say(url=url, rss_added_mb=rss_mb() - before, commits=runtime.db.commits)
        while True:
            line = (await asyncio.to_thread(sys.stdin.readline)).split()
            if not line or line[0] == "quit":
                break
            if line[0] == "commits":
                say(commits=runtime.db.commits)
            elif line[0] == "turn":
                monitor.start()
                count = int(line[1])
                # all-time revolutions -> when fed (wall clock); a fresh database, so all-time
                # revolutions are the ones this process credited
                fed_at: dict[int, float] = {}
                start = time.perf_counter()
                for index in range(count):
                    # Keep to the schedule: 5 notifications a second, one revolution each.
                    delay = start + index / REV_PER_S - time.perf_counter()
                    if delay > 0:
                        await asyncio.sleep(delay)
                    counter += 1
                    pipeline.feed(encode_csc_measurement(counter, 0), time.time())
                    fed_at[pipeline.credited] = time.time()
                await asyncio.sleep(0.5)
                lag = await monitor.stop()
                say(
                    revolutions=pipeline.credited,
                    fed_at=fed_at,
                    lag_max_ms=max(lag) * 1000,
                    lag_p99_ms=sorted(lag)[math.ceil(0.99 * len(lag)) - 1] * 1000,
                )
    finally:
        await runtime.close()


# --- this process: the crowd ---------------------------------------------------------------------------


async def _timed_gets(session, url: str, clients: int, requests: int) -> list[float]:
    samples: list[float] = []

    async def one_client() -> None:
        for _ in range(requests):
            started = time.perf_counter()
            async with session.get(url) as response:
                await response.read()
                if response.status != 200:
                    raise RuntimeError(f"{url}: HTTP {response.status}")
            samples.append((time.perf_counter() - started) * 1000)

    await asyncio.gather(*(one_client() for _ in range(clients)))
    return samples


async def _live_client(
    session, url: str, seen: list[int], ready: asyncio.Event, last: list[int], arrived: list
):
    async with session.get(url + "/api/live") as response:
        async for raw in response.content:
            line = raw.decode().strip()
            if not line.startswith("data: "):
                continue
            revolutions = json.loads(line[6:])["hamsters"][0]["revolutions"]
            seen.append(revolutions)
            arrived.append((revolutions, time.time()))
            ready.set()
            if last and revolutions >= last[0]:
                return


async def run(
    workdir: Path, *, clients: int = 200, requests: int = 10, updates: int = 50
) -> WebResult:
    import aiohttp

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "benchmarks.web",
        "--serve",
        str(workdir / "web.db"),
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    assert process.stdin is not None and process.stdout is not None

    async def ask(command: str) -> dict:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(command.encode() + b"\n")
        await process.stdin.drain()
        return json.loads(await process.stdout.readline())

    try:
        hello = json.loads(await process.stdout.readline())
        url = hello["url"]
        connector = aiohttp.TCPConnector(limit=0, force_close=False)
        timeout = aiohttp.ClientTimeout(total=None, sock_read=60)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            before = (await ask("commits"))["commits"]
            await _timed_gets(session, url + "/api/hamsters", 10, 2)  # warm up
            await _timed_gets(session, url + "/", 10, 2)
            hamsters = await _timed_gets(session, url + "/api/hamsters", clients, requests)
            page = await _timed_gets(session, url + "/", clients, requests)
            views = len(hamsters) + len(page) + 40
            commits = (await ask("commits"))["commits"] - before

            # The same turning with nobody watching: the machine's own lag, for comparison.
            quiet = await ask(f"turn {min(updates, 25)}")
            seen: list[list[int]] = [[] for _ in range(clients)]
            arrived: list[tuple[int, float]] = []
            readies = [asyncio.Event() for _ in range(clients)]
            last: list[int] = []
            tasks = [
                asyncio.create_task(_live_client(session, url, seen[i], readies[i], last, arrived))
                for i in range(clients)
            ]
            await asyncio.gather(*(ready.wait() for ready in readies))
            start = seen[0][-1]
            last.append(start + updates)  # each client stops once it has seen the last update
            turned = await ask(f"turn {updates}")
            await asyncio.wait_for(asyncio.gather(*tasks), 60)
        expected = set(range(start, start + updates + 1))
        complete = sum(1 for s in seen if expected <= set(s))
        # From the notification in the child to the figure in each client (same machine, same clock).
        fed_at = {int(k): v for k, v in turned["fed_at"].items()}
        delays = [(at - fed_at[r]) * 1000 for r, at in arrived if r in fed_at]
        process.stdin.write(b"quit\n")
        await process.stdin.drain()
        await process.wait()
        return WebResult(
            clients=clients,
            hamsters_p50_ms=p50(hamsters),
            hamsters_p95_ms=p95(hamsters),
            page_p50_ms=p50(page),
            page_p95_ms=p95(page),
            page_views=views,
            commits=commits,
            live_clients=clients,
            updates=updates,
            clients_saw_every_update=complete,
            delivery_p95_ms=p95(delays),
            delivery_max_ms=max(delays),
            lag_max_ms=turned["lag_max_ms"],
            lag_p99_ms=turned["lag_p99_ms"],
            quiet_lag_max_ms=quiet["lag_max_ms"],
            quiet_lag_p99_ms=quiet["lag_p99_ms"],
            rss_added_mb=hello["rss_added_mb"],
        )
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.web")
    parser.add_argument("--serve", type=Path, required=True, help="the child: serve this database")
    args = parser.parse_args()
    asyncio.run(serve(args.serve))


if __name__ == "__main__":
    main()
