"""The public page over HTTP with aiohttp's test client: JSON shapes, headers, 404s, traversal, the form,
live events fed by the real wheel pipeline, race links made and revoked in the database."""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import ClientSession
from aiohttp.test_utils import TestClient, TestServer

from bot import config as config_module
from bot.core.commands import BotCore
from bot.frontends import web
from bot.frontends.web_reads import CoreReads
from bot.wheels import WheelPipeline
from sensors.csc import encode_csc_measurement
from storage import chats as chat_store
from storage.db import Database
from tests.conftest import make_ctx

# Wed 2025-12-03 21:00 London: tonight started at 08:00, last night is Tue 08:00 -> Wed 08:00.
NOW = datetime(2025, 12, 3, 21, 0, tzinfo=UTC).timestamp()
TOKEN = "A" * 32


class Wheel:
    """Feeds the real pipeline one CSC notification per call, ``revolutions`` further on."""

    def __init__(self, pipeline: WheelPipeline, start: float) -> None:
        self.pipeline = pipeline
        self.counter = 1000
        self.at = start
        pipeline.feed(encode_csc_measurement(self.counter, 0), self.at)  # the baseline

    def turn(self, revolutions: int) -> None:
        self.counter += revolutions
        self.at += max(revolutions, 1)  # a revolution a second: a plausible hamster
        self.pipeline.feed(encode_csc_measurement(self.counter, 0), self.at)

    def rest_until(self, at: float) -> None:
        """The wheel stands still until ``at`` (the same reading again credits nothing)."""
        self.at = at
        self.pipeline.feed(encode_csc_measurement(self.counter, 0), self.at)


class Site:
    def __init__(self, db: Database, core: BotCore, pipeline: WheelPipeline) -> None:
        self.db, self.core, self.pipeline = db, core, pipeline
        self.clock = [NOW]
        self.reads = CoreReads(core, {"Ursula": pipeline}, clock=lambda: self.clock[0])
        self.hub = web.LiveHub(self.reads, race_debounce=0.0)
        pipeline.listeners.append(self.hub.credit)
        core.after_command = lambda ctx: self.hub.race_changed()
        core.web_url = "https://hamster.example"
        self.app = web.build_app(
            self.reads, units="km", public_url="https://hamster.example", hub=self.hub
        )


@pytest.fixture
async def site(db: Database, config: config_module.Config) -> Site:
    core = await BotCore.create(db, config)
    pipeline = await WheelPipeline.open(db, config.hamsters[0])
    return Site(db, core, pipeline)


@pytest.fixture
async def client(site: Site) -> AsyncIterator[TestClient]:
    await site.hub.refresh()
    async with TestClient(TestServer(site.app)) as test_client:
        yield test_client


async def make_link(site: Site, chat: str = "group-1") -> str:
    row = await chat_store.ensure_chat(site.db, "console", chat, NOW)
    await chat_store.set_web_link(site.db, row.id, TOKEN, NOW)
    return TOKEN


async def test_api_hamsters_shape_and_live_buffered_figures(site: Site, client: TestClient) -> None:
    wheel = Wheel(site.pipeline, NOW - 7200)
    wheel.turn(100)
    commits = site.db.commits
    response = await client.get("/api/hamsters")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("application/json")
    body = await response.json()
    assert list(body) == ["hamsters"]
    (ursula,) = body["hamsters"]
    assert set(ursula) == {
        "name",
        "tonight_m",
        "last_night_m",
        "average_7_m",
        "all_time_m",
        "revolutions",
        "online",
    }
    # The credit is still in the pipeline's buffer: the page sees it without any commit.
    assert ursula["revolutions"] == 100
    assert ursula["tonight_m"] == pytest.approx(
        100 * site.pipeline.hamster.circumference_m, abs=1e-3
    )
    assert ursula["last_night_m"] is None and ursula["average_7_m"] is None
    assert site.db.commits == commits


async def test_refresh_reads_stored_totals_plus_buffer(site: Site, client: TestClient) -> None:
    wheel = Wheel(site.pipeline, NOW - 24 * 3600)  # Tue 21:00: last night
    wheel.turn(300)
    await site.pipeline.flush()
    wheel.rest_until(NOW - 7200)
    wheel.turn(50)
    await site.hub.refresh()
    (ursula,) = (await (await client.get("/api/hamsters")).json())["hamsters"]
    circumference = site.pipeline.hamster.circumference_m
    assert ursula["revolutions"] == 350
    assert ursula["last_night_m"] == pytest.approx(300 * circumference, abs=1e-3)
    assert ursula["tonight_m"] == pytest.approx(50 * circumference, abs=1e-3)
    assert ursula["average_7_m"] == pytest.approx(300 * circumference, abs=1e-3)


async def test_nights_api(site: Site, client: TestClient) -> None:
    wheel = Wheel(site.pipeline, NOW - 24 * 3600)
    wheel.turn(200)
    await site.pipeline.flush()
    response = await client.get("/api/hamsters/ursula/nights?days=30")
    assert response.status == 200
    nights = (await response.json())["nights"]
    assert len(nights) == 30
    assert set(nights[0]) == {"date", "distance_m"}
    assert nights[-1]["date"] == "2025-12-03"  # the morning last night ended
    assert nights[-1]["distance_m"] == pytest.approx(
        200 * site.pipeline.hamster.circumference_m, abs=1e-3
    )
    assert all(n["distance_m"] is None for n in nights[:-1])  # no data, not 0 m
    for bad in ("0", "367", "abc", "-1", "1e3"):
        response = await client.get(f"/api/hamsters/Ursula/nights?days={bad}")
        assert response.status == 400, bad
        assert "error" in await response.json()
    assert (await client.get("/api/hamsters/Nobody/nights")).status == 404


async def test_headers_on_every_kind_of_response(client: TestClient) -> None:
    for path in ("/", "/api/hamsters", "/static/page.js", "/nope", "/api/nope"):
        response = await client.get(path)
        assert response.headers["X-Content-Type-Options"] == "nosniff", path
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp, path
        assert "frame-ancestors 'none'" in csp


async def test_page_has_no_inline_script_or_style(client: TestClient) -> None:
    html = await (await client.get("/")).text()
    scripts = re.findall(r"<script\b[^>]*>(.*?)</script>", html, re.S)
    assert scripts and all(body == "" for body in scripts)
    assert " style=" not in html and "<style" not in html
    assert re.search(r"\son[a-z]+=", html) is None  # no event-handler attributes
    assert "http://" not in html.replace("https://hamster.example", "")


async def test_unknown_paths_are_friendly_404s_and_traversal_fails(client: TestClient) -> None:
    response = await client.get("/nope")
    assert response.status == 404
    assert "the front page" in await response.text()
    response = await client.get("/api/nope")
    assert response.status == 404 and (await response.json())["error"]
    for path in (
        "/static/../web.py",
        "/static/%2e%2e/web.py",
        "/static/..%2fweb.py",
        "/static/%2e%2e/%2e%2e/config.py",
        "/static/",
        "/static",
    ):
        response = await client.get(path)
        assert response.status in (403, 404), path
        assert "WebServer" not in await response.text(), path
    assert (await client.get("/static/style.css")).status == 200


async def test_read_only_and_size_limited(client: TestClient) -> None:
    response = await client.post("/api/hamsters", data=b"x")
    assert response.status == 405
    response = await client.post("/", data=b"x" * 10_000)
    assert response.status in (405, 413)
    response = await client.get("/", headers={"X-Long": "y" * 20_000})
    assert response.status in (400, 431)


async def test_figures_are_machine_readable(site: Site, client: TestClient) -> None:
    Wheel(site.pipeline, NOW - 7200).turn(1000)
    html = await (await client.get("/")).text()
    figures = dict(
        re.findall(r'data-hamster="Ursula" data-metric="(\w+)" data-metres="([0-9.]+)">', html)
    )
    assert figures["tonight"] == f"{1000 * site.pipeline.hamster.circumference_m:.3f}"
    assert figures["all_time"] == figures["tonight"]
    assert re.search(r'data-metric="last_night">no data<', html)  # no data, not zero
    assert ">628 m<" in html  # formatted in the site's units (km)
    miles = await (await client.get("/?units=mi")).text()
    assert ">0.39 mi<" in miles


async def test_link_preview_tags_and_cached_image(site: Site, client: TestClient) -> None:
    html = await (await client.get("/")).text()
    assert '<meta property="og:image" content="https://hamster.example/preview.png">' in html
    assert 'name="twitter:card" content="summary_large_image"' in html
    first = await client.get("/preview.png")
    assert first.status == 200 and first.headers["Content-Type"] == "image/png"
    assert (await first.read()).startswith(b"\x89PNG")
    await client.get("/preview.png")
    await client.get("/preview.png")
    assert site.app[web.SITE].preview.draws == 1  # drawn once, then served from the cache


async def test_preview_cache_redraws_at_most_every_max_age() -> None:
    now = [0.0]
    drawn: list[int] = []

    async def draw() -> bytes:
        drawn.append(1)
        return b"png%d" % len(drawn)

    cache = web.PreviewCache(draw, max_age=300, clock=lambda: now[0])
    assert await cache.png() == b"png1"
    now[0] = 299
    assert await cache.png() == b"png1"
    now[0] = 301
    assert await cache.png() == b"png1"  # stale is served while the new one is drawn
    await asyncio.sleep(0)
    assert await cache.png() == b"png2"
    assert len(drawn) == 2
    await cache.close()


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (
            "distance=5+km&period=tonight",
            "Yes! You ran 5.00 km, 4.37 km more than Ursula's 628 m tonight.",
        ),
        (
            "distance=100+m&period=tonight",
            "Not yet: Ursula ran 628 m tonight, 528 m more than your 100 m.",
        ),
        (
            "distance=1&period=all_time",
            "Yes! You ran 1.00 km, 372 m more than Ursula's 628 m all time.",
        ),
        (
            "distance=1+km&period=last_night",
            "Yes! Ursula hasn't run last night, and you ran 1.00 km.",
        ),
        (
            "distance=100+m&period=week",
            "Not yet: Ursula ran 628 m this week, 528 m more than your 100 m.",
        ),
    ],
)
async def test_the_form_answers_without_javascript(
    site: Site, client: TestClient, query: str, expected: str
) -> None:
    Wheel(site.pipeline, NOW - 7200).turn(1000)
    html = await (await client.get(f"/?{query}")).text()
    assert expected.replace("'", "&#x27;") in html


@pytest.mark.parametrize("distance", ["banana", "-5 km", "9999999 km", "", "5 parsecs"])
async def test_the_form_rejects_bad_input_kindly(client: TestClient, distance: str) -> None:
    response = await client.get("/", params={"distance": distance, "period": "tonight"})
    assert response.status == 200
    html = await response.text()
    assert "Traceback" not in html
    if distance:
        assert 'class="error"' in html
    response = await client.get("/", params={"distance": "5", "period": "never"})
    assert 'class="error"' in await response.text()


async def test_race_link_shape_unknown_and_revoked(site: Site, client: TestClient) -> None:
    token = await make_link(site)
    reply = await site.core.dispatch(make_ctx(datetime.fromtimestamp(NOW, UTC)), "logrun", "3 km")
    assert "Logged" in reply.text
    response = await client.get(f"/api/race/{token}?period=week")
    assert response.status == 200
    body = await response.json()
    assert body["period"] == "week"
    assert {"name": "Alice", "kind": "person", "distance_m": 3000.0} in body["standings"]
    assert {e["kind"] for e in body["standings"]} == {"hamster", "person"}
    assert (await client.get(f"/r/{token}")).status == 200
    assert (await client.get(f"/api/race/{token}?period=fortnight")).status == 400
    assert (await client.get("/api/race/" + "B" * 32)).status == 404
    assert (await client.get("/r/short")).status == 404
    # Nobody's runs or names anywhere else on the site.
    for path in ("/", "/api/hamsters", "/api/hamsters/Ursula/nights"):
        assert "Alice" not in await (await client.get(path)).text()
    chat = await chat_store.get_chat(site.db, "console", "group-1")
    assert chat is not None
    assert await chat_store.revoke_web_link(site.db, chat.id)
    assert (await client.get(f"/r/{token}")).status == 404
    assert (await client.get(f"/api/race/{token}")).status == 404


def at_now(**kwargs: object):
    return make_ctx(datetime.fromtimestamp(NOW, UTC), **kwargs)  # type: ignore[arg-type]


async def test_web_command_makes_and_revokes_links(site: Site, client: TestClient) -> None:
    refused = await site.core.dispatch(at_now(admin=False), "web", "")
    assert refused.private and "admins" in refused.text
    assert await site.db.fetchall("SELECT * FROM web_links") == []
    assert (await site.core.dispatch(at_now(admin=True), "web", "sideways")).private
    reply = await site.core.dispatch(at_now(admin=True), "web", "")
    match = re.search(r"https://hamster\.example/r/([A-Za-z0-9_-]+)", reply.text)
    assert match, reply.text
    token = match.group(1)
    assert len(token) >= 22  # >= 128 bits in URL-safe base64
    assert (await client.get(f"/r/{token}")).status == 200
    again = await site.core.dispatch(at_now(admin=True), "web", "")
    new_match = re.search(r"/r/([A-Za-z0-9_-]+)", again.text)
    assert new_match
    new = new_match.group(1)
    assert new != token
    assert (await client.get(f"/r/{token}")).status == 404  # the old link stops working
    assert (await client.get(f"/r/{new}")).status == 200
    assert (await site.core.dispatch(at_now(admin=False), "web", "off")).private
    assert (await client.get(f"/r/{new}")).status == 200
    off = await site.core.dispatch(at_now(admin=True), "web", "off")
    assert "off" in off.text and not off.private
    assert (await client.get(f"/r/{new}")).status == 404
    assert (await site.core.dispatch(at_now(admin=True), "web", "off")).private  # nothing to stop
    # Another chat's link never shows this chat's runs.
    await site.core.dispatch(at_now(admin=True), "logrun", "3 km")
    other = await site.core.dispatch(at_now(admin=True, chat="group-2"), "web", "")
    other_match = re.search(r"/r/([A-Za-z0-9_-]+)", other.text)
    assert other_match
    body = await (await client.get(f"/api/race/{other_match.group(1)}")).json()
    assert [e["kind"] for e in body["standings"]] == ["hamster"]


async def test_web_command_without_a_page_says_so(site: Site) -> None:
    site.core.web_url = None
    reply = await site.core.dispatch(at_now(admin=True), "web", "")
    assert reply.private and "[web]" in reply.text
    assert await site.db.fetchall("SELECT * FROM web_links") == []


async def test_tokens_are_stored_hashed(site: Site) -> None:
    token = await make_link(site)
    dump = "\n".join(str(row) for row in await site.db.fetchall("SELECT * FROM web_links"))
    assert token not in dump
    chat = await chat_store.chat_by_web_token(site.db, token)
    assert chat is not None and chat.chat_key == "group-1"
    await chat_store.set_web_link(site.db, chat.id, "C" * 32, NOW)  # a new link replaces the old
    assert await chat_store.chat_by_web_token(site.db, token) is None


async def read_events(response, count: int) -> list[dict]:
    events: list[dict] = []
    async for line in response.content:
        text = line.decode().strip()
        if text.startswith("data: "):
            events.append(json.loads(text[6:]))
            if len(events) == count:
                return events
    raise AssertionError(f"the stream ended after {events}")


async def test_live_events_follow_the_pipeline(site: Site, client: TestClient) -> None:
    wheel = Wheel(site.pipeline, NOW - 7200)
    response = await client.get("/api/live")
    assert response.headers["Content-Type"] == "text/event-stream"
    (first,) = await read_events(response, 1)
    assert first["hamsters"][0]["revolutions"] == 0
    commits = site.db.commits
    wheel.turn(7)
    (second,) = await read_events(response, 1)
    assert second["hamsters"][0]["revolutions"] == 7
    wheel.turn(3)
    wheel.turn(2)  # one tick: one event
    (third,) = await read_events(response, 1)
    assert third["hamsters"][0]["revolutions"] == 12
    assert site.db.commits == commits
    response.close()


async def test_race_events_follow_logged_runs_and_revocation(
    site: Site, client: TestClient
) -> None:
    token = await make_link(site)
    response = await client.get(f"/api/race/{token}/live?period=week")
    (first,) = await read_events(response, 1)
    assert [e["kind"] for e in first["standings"]] == ["hamster"]
    await site.core.dispatch(make_ctx(datetime.fromtimestamp(NOW, UTC)), "logrun", "2 km")
    (second,) = await read_events(response, 1)
    assert {"name": "Alice", "kind": "person", "distance_m": 2000.0} in second["standings"]
    # The race chart comes with it: cumulative lines, the person's a step up to her run.
    lines = {line["name"]: line for line in second["chart"]["lines"]}
    assert set(lines) == {"Ursula", "Alice"}
    alice = lines["Alice"]
    assert alice["kind"] == "person"
    assert [m for _, m in alice["points"]] == [0.0, 2000.0, 2000.0]
    assert alice["points"][1][0] == int(NOW)  # logged now: ran now
    assert lines["Ursula"]["kind"] == "hamster"
    chat = await chat_store.get_chat(site.db, "console", "group-1")
    assert chat is not None
    await chat_store.revoke_web_link(site.db, chat.id)
    site.hub.race_changed()
    (gone,) = await read_events(response, 1)
    assert gone == {"gone": True}
    assert (await response.content.read()).strip() == b""  # the stream ended
    assert (await client.get(f"/api/race/{token}/live")).status == 404


async def test_a_viewer_that_falls_behind_is_dropped_not_waited_for(site: Site) -> None:
    wheel = Wheel(site.pipeline, NOW - 7200)
    await site.hub.refresh()
    viewer = site.hub.watch()
    aborted: list[bool] = []
    viewer.abort = lambda: aborted.append(True)
    for _ in range(web.QUEUE_SIZE + 5):
        wheel.turn(1)
        await asyncio.sleep(0)  # let each broadcast run; nobody reads the queue
    assert viewer.dropped and site.hub.viewers == 0
    assert viewer.queue.get_nowait() is None
    assert aborted == [True]  # its connection is closed, so a handler stuck writing ends too
    assert site.pipeline.credited == web.QUEUE_SIZE + 5  # the wheel never waited


async def test_heartbeats_reach_every_viewer(site: Site) -> None:
    await site.hub.refresh()
    viewer = site.hub.watch()
    viewer.queue.get_nowait()  # the figures
    site.hub.heartbeat()
    assert viewer.queue.get_nowait() == b": still here\n\n"


async def test_listener_failure_never_stops_counting(site: Site) -> None:
    def broken(name: str, revolutions: int, metres: float) -> None:
        raise RuntimeError("boom")

    site.pipeline.listeners.insert(0, broken)
    wheel = Wheel(site.pipeline, NOW - 7200)
    wheel.turn(5)
    assert site.pipeline.credited == 5


async def test_server_starts_on_next_free_port_and_closes(site: Site, tmp_path: Path) -> None:
    settings = config_module.WebSettings(host="127.0.0.1", port=0)
    first = web.WebServer(site.reads, settings, "km")
    url = await first.start()
    port = int(url.rsplit(":", 1)[1])
    second = web.WebServer(site.reads, config_module.WebSettings(host="127.0.0.1", port=port), "km")
    try:
        url2 = await second.start(next_free=True)
        assert int(url2.rsplit(":", 1)[1]) > port
        async with ClientSession() as session, session.get(url2 + "/api/hamsters") as response:
            assert response.status == 200
    finally:
        await second.close()
        await first.close()
    third = web.WebServer(site.reads, config_module.WebSettings(host="127.0.0.1", port=port), "km")
    await third.start()  # the port is free again
    await third.close()


def test_web_config_is_validated() -> None:
    parsed = config_module.parse(
        {"web": {"listen": "0.0.0.0:8090", "public_url": "https://h.example/", "units": "mi"}}
    )
    assert parsed.web == config_module.WebSettings("0.0.0.0", 8090, "https://h.example", "mi")
    assert config_module.parse({}).web is None
    assert config_module.parse({"web": {}}).web == config_module.WebSettings()
    for table, key in (
        ({"listen": "8080"}, "listen"),
        ({"listen": "host:99999"}, "listen"),
        ({"public_url": "ftp://x"}, "public_url"),
        ({"units": "furlongs"}, "units"),
        ({"port": 8080}, '"port"'),
    ):
        with pytest.raises(config_module.ConfigError, match=key):
            config_module.parse({"web": table})


async def test_nights_are_read_once_a_minute_not_once_a_view(
    site: Site, client: TestClient
) -> None:
    calls: list[str] = []
    read = site.reads.nights

    async def counted(name: str, days: int):
        calls.append(name)
        return await read(name, days)

    site.reads.nights = counted  # type: ignore[method-assign]
    for _ in range(5):
        assert (await client.get("/api/hamsters/Ursula/nights?days=30")).status == 200
    assert (await client.get("/api/hamsters/ursula/nights?days=30")).status == 200
    assert calls == ["Ursula"]
    assert (await client.get("/api/hamsters/Ursula/nights?days=7")).status == 200
    assert (await client.get("/api/hamsters/Nobody/nights?days=7")).status == 404
    assert (await client.get("/api/hamsters/Nobody/nights?days=7")).status == 404  # not cached
    assert calls == ["Ursula", "Ursula", "Nobody", "Nobody"]
