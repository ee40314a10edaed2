"""The public page: how far the hamster ran, live, served by the bot's own process (aiohttp).

Routes: ``/`` (the hamsters' figures, the 30-night chart, "have you run as much as ...?"), ``/r/TOKEN`` (one
chat's race, shared by ``/web``), ``/api/hamsters``, ``/api/hamsters/NAME/nights?days=N``,
``/api/race/TOKEN?period=P``, ``/api/league?period=P`` (every hamster the bot knows, with its home), live events on ``/api/live`` and ``/api/race/TOKEN/live`` (Server-Sent Events),
``/preview.png`` (the link preview card) and ``/static/``.

Read-only: the page reads through ``PageReads`` (stored totals plus the wheel buffers, never a commit). Live
figures come from ``LiveHub``: it reads the figures once, then adds the revolutions the wheel pipelines report
(``WheelPipeline.listeners``) in memory, so a thousand viewers cost one read, not a thousand. Each viewer has a
small queue; one that falls behind is dropped (its browser reconnects), so no viewer can slow the wheel or the
chats.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import re
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import web

from bot.config import WebSettings
from bot.core.model import HamsterNow, League, NightDistance, Standings
from bot.core.parsing import Units, UserError, format_distance, parse_distance
from bot.frontends import web_pages as pages

if TYPE_CHECKING:
    from bot.core.charts import RaceLine

log = logging.getLogger(__name__)

STATIC = Path(__file__).with_name("web_static")
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}
MAX_REQUEST_BYTES = 4096  # the site takes no uploads: GET and HEAD only
TOKEN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_NIGHTS = 366
QUEUE_SIZE = 32  # events a viewer may fall behind before it is dropped
HEARTBEAT_SECONDS = 15.0  # a comment line now and then finds viewers that vanished
REFRESH_SECONDS = 30.0  # re-read the figures: a night ends, a sensor goes offline
RACE_DEBOUNCE_SECONDS = 1.0  # a race shown is read again at most once a second, whoever watches
PREVIEW_MAX_AGE_SECONDS = 300.0
NIGHTS_CACHE_SECONDS = 60.0
NIGHTS_CACHE_ENTRIES = 64


class PageReads(Protocol):
    """What the page reads (the application layer's read functions, scoped to the public page)."""

    async def hamsters(self) -> list[HamsterNow]: ...

    async def nights(self, name: str, days: int) -> list[NightDistance] | None:
        """The last ``days`` complete nights, oldest first; None for an unknown hamster."""
        ...

    async def standings(self, period: str, token: str | None) -> Standings | None:
        """A period's standings: the hamsters alone (``token`` None) or the race of the chat whose
        link ``token`` is; None when no chat has that link. Raises UserError for a bad period."""
        ...

    async def race_chart(self, period: str, token: str) -> list[RaceLine] | None:
        """The race's cumulative distance lines (as /chart draws them); None as ``standings``."""
        ...

    async def league(self, period: str) -> League:
        """Every hamster the bot knows, ranked over ``period``. Raises UserError for a bad period."""
        ...


# --- live figures ---------------------------------------------------------------------------------


class Viewer:
    """One open live connection: a bounded queue of ready-to-send events; ``None`` ends it."""

    def __init__(self, size: int = QUEUE_SIZE) -> None:
        self.queue: asyncio.Queue[bytes | None] = asyncio.Queue(size)
        self.dropped = False
        # Closes the connection: a viewer whose socket stopped taking data has its handler
        # stuck in a write, which only closing ends.
        self.abort: Callable[[], None] | None = None

    def send(self, event: bytes) -> bool:
        if self.dropped:
            return False
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            log.debug("a live viewer fell behind; dropping it")
            self.end()
            if self.abort is not None:
                self.abort()
            return False
        return True

    def end(self) -> None:
        """Queue the end marker (making room if full): the handler stops at it; a dropped browser
        reconnects and starts from the figures of that moment."""
        self.dropped = True
        if self.queue.full():
            while not self.queue.empty():
                self.queue.get_nowait()
        self.queue.put_nowait(None)


@dataclass
class _RaceFeed:
    token: str
    period: str
    viewers: set[Viewer] = field(default_factory=set)
    event: bytes | None = None


class LiveHub:
    """The figures every viewer sees: one read, plus the revolutions credited since, in memory."""

    def __init__(
        self,
        reads: PageReads,
        *,
        refresh_seconds: float = REFRESH_SECONDS,
        race_debounce: float = RACE_DEBOUNCE_SECONDS,
    ) -> None:
        self._reads = reads
        self.refresh_seconds = refresh_seconds
        self.race_debounce = race_debounce
        self._base: list[HamsterNow] = []
        self._credited: dict[str, tuple[int, float]] = {}  # since the process started
        self._at_base: dict[str, tuple[int, float]] = {}  # ``_credited`` when ``_base`` was read
        self._viewers: set[Viewer] = set()
        self._races: dict[tuple[str, str], _RaceFeed] = {}
        self._event: bytes | None = None
        self._broadcast_pending = False
        self._race_task: asyncio.Task[None] | None = None
        self.reads = 0  # figures read from the store (benchmarks: one per refresh, not per viewer)

    # The pipelines' listener (``bot.wheels.CreditListener``): called inside ``feed``.
    def credit(self, name: str, revolutions: int, metres: float) -> None:
        count, total = self._credited.get(name, (0, 0.0))
        self._credited[name] = (count + revolutions, total + metres)
        if not self._broadcast_pending:
            self._broadcast_pending = True
            # After ``feed`` returns: a burst of credits in one tick becomes one event.
            with contextlib.suppress(RuntimeError):  # no loop running: nobody is watching
                asyncio.get_running_loop().call_soon(self._broadcast)
        self.race_changed()

    def race_changed(self) -> None:
        """Something a race shows may have changed (a credit, a run logged, a link revoked)."""
        if not self._races or (self._race_task is not None and not self._race_task.done()):
            return
        with contextlib.suppress(RuntimeError):
            self._race_task = asyncio.get_running_loop().create_task(self._refresh_races())

    def current(self) -> list[HamsterNow]:
        """The figures now: the last read plus what was credited since, without any I/O."""
        figures = []
        for hamster in self._base:
            count, metres = self._credited.get(hamster.name, (0, 0.0))
            base_count, base_metres = self._at_base.get(hamster.name, (0, 0.0))
            extra_count, extra_m = count - base_count, metres - base_metres
            if extra_count:
                hamster = replace(
                    hamster,
                    tonight_m=hamster.tonight_m + extra_m,
                    all_time_m=hamster.all_time_m + extra_m,
                    revolutions=hamster.revolutions + extra_count,
                )
            figures.append(hamster)
        return figures

    async def refresh(self) -> None:
        """Read the figures again. Credits that land while the read is on the database thread
        may or may not be in it, so a read that raced a credit is done again."""
        for _ in range(3):
            before = dict(self._credited)
            base = await self._reads.hamsters()
            self.reads += 1
            if self._credited == before:
                break
        self._base, self._at_base = base, dict(self._credited)
        self._broadcast()

    async def run(self) -> None:
        """Heartbeats every ``HEARTBEAT_SECONDS`` (they find viewers that vanished), and a refresh
        every ``refresh_seconds``, until cancelled."""
        refreshed = time.monotonic()
        while True:
            await asyncio.sleep(min(HEARTBEAT_SECONDS, self.refresh_seconds))
            self.heartbeat()
            if time.monotonic() - refreshed < self.refresh_seconds:
                continue
            refreshed = time.monotonic()
            try:
                await self.refresh()
            except Exception:
                log.exception("Reading the page's figures failed; will retry")

    def heartbeat(self) -> None:
        for viewer in [*self._viewers, *(v for f in self._races.values() for v in f.viewers)]:
            viewer.send(b": still here\n\n")

    def _broadcast(self) -> None:
        self._broadcast_pending = False
        event = pages.sse_event(pages.hamsters_json(self.current()))
        if event == self._event:
            return
        self._event = event
        for viewer in list(self._viewers):
            if not viewer.send(event):
                self._viewers.discard(viewer)

    def watch(self) -> Viewer:
        viewer = Viewer()
        if self._event is not None:
            viewer.send(self._event)
        self._viewers.add(viewer)
        return viewer

    def unwatch(self, viewer: Viewer) -> None:
        self._viewers.discard(viewer)
        for key, feed in list(self._races.items()):
            feed.viewers.discard(viewer)
            if not feed.viewers:
                del self._races[key]

    @property
    def viewers(self) -> int:
        return len(self._viewers) + sum(len(f.viewers) for f in self._races.values())

    async def watch_race(self, token: str, period: str) -> Viewer | None:
        """A viewer of one chat's race; None when the link does not exist (any more)."""
        key = (token, period)
        feed = self._races.get(key)
        if feed is None or feed.event is None:
            event = await self._race_event(token, period)
            if event is None:
                return None
            feed = self._races.setdefault(key, _RaceFeed(token, period))
            feed.event = event
        viewer = Viewer()
        viewer.send(feed.event)
        feed.viewers.add(viewer)
        return viewer

    async def _race_event(self, token: str, period: str) -> bytes | None:
        """The race's standings and chart lines as one event; None when the link is gone."""
        standings = await self._reads.standings(period, token)
        lines = await self._reads.race_chart(period, token) if standings is not None else None
        if standings is None or lines is None:
            return None
        payload = pages.standings_json(period, standings)
        payload["chart"] = pages.race_chart_json(lines)
        return pages.sse_event(payload)

    async def _refresh_races(self) -> None:
        await asyncio.sleep(self.race_debounce)
        for key, feed in list(self._races.items()):
            try:
                event = await self._race_event(feed.token, feed.period)
            except Exception:
                log.exception("Reading a race for the page failed")
                continue
            if event is None:  # the link was revoked: every open page learns it at once
                for viewer in feed.viewers:
                    viewer.send(pages.sse_event({"gone": True}, "gone"))
                    viewer.end()
                self._races.pop(key, None)
                continue
            if event != feed.event:
                feed.event = event
                for viewer in list(feed.viewers):
                    if not viewer.send(event):
                        feed.viewers.discard(viewer)

    def close(self) -> None:
        """End every live connection (shutdown)."""
        for viewer in list(self._viewers):
            viewer.end()
        for feed in self._races.values():
            for viewer in feed.viewers:
                viewer.end()
        self._viewers.clear()
        self._races.clear()
        if self._race_task is not None:
            self._race_task.cancel()


# --- the link preview image -------------------------------------------------------------------------


class PreviewCache:
    """The preview PNG, drawn lazily in a thread, redrawn at most every ``max_age`` seconds.

    A stale image is served while the new one is drawn; only the very first request waits.
    """

    def __init__(
        self,
        draw: Callable[[], Awaitable[bytes | None]],
        *,
        max_age: float = PREVIEW_MAX_AGE_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._draw = draw
        self.max_age = max_age
        self._clock = clock
        self._png: bytes | None = None
        self._drawn_at = float("-inf")
        self._task: asyncio.Task[None] | None = None
        self.draws = 0

    async def png(self) -> bytes | None:
        if self._clock() - self._drawn_at >= self.max_age and self._task is None:
            self._task = asyncio.create_task(self._redraw())
        if self._png is None and self._task is not None:
            await asyncio.shield(self._task)
        return self._png

    async def _redraw(self) -> None:
        try:
            self.draws += 1
            png = await self._draw()
            if png is not None:
                self._png = png
        except Exception:
            log.exception("Drawing the preview image failed")
        finally:
            # Also after a failure: the next try waits ``max_age`` like a success would.
            self._drawn_at = self._clock()
            self._task = None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def preview_text(hamsters: Sequence[HamsterNow], units: Units) -> tuple[str, str, list[str]]:
    """(title, headline, lines) of the preview: the first hamster's figures."""
    if not hamsters:
        return "Have you run as much as my hamster?", "No wheel yet", []
    first = hamsters[0]
    lines = [f"Tonight so far: {format_distance(first.tonight_m, units)}"]
    if first.average_7_m is not None:
        lines.append(f"7-night average: {format_distance(first.average_7_m, units)}")
    lines.append(f"All time: {format_distance(first.all_time_m, units)}")
    headline = format_distance(
        first.last_night_m if first.last_night_m is not None else first.tonight_m, units
    )
    if first.last_night_m is not None:
        headline += " last night"
    return f"Have you run as much as {first.name}?", headline, lines


# --- the site ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Site:
    reads: PageReads
    hub: LiveHub
    preview: PreviewCache
    units: Units
    public_url: str
    # (hamster, days) -> (monotonic time, JSON): every page view fetches the 30 nights, which
    # change once a morning; a minute's cache makes a crowd one read a minute, not one a view.
    nights: dict[tuple[str, int], tuple[float, dict[str, Any]]] = field(default_factory=dict)


SITE: web.AppKey[Site] = web.AppKey("site", Site)


def _units(request: web.Request, site: Site) -> Units:
    asked = request.query.get("units")
    return asked if asked in ("km", "mi") else site.units  # type: ignore[return-value]


def _json(payload: dict[str, Any], status: int = 200) -> web.Response:
    return web.json_response(payload, status=status, headers={"Cache-Control": "no-store"})


def _html(text: str, status: int = 200) -> web.Response:
    return web.Response(
        text=text,
        status=status,
        content_type="text/html",
        charset="utf-8",
        headers={"Cache-Control": "no-store"},
    )


def _not_found(request: web.Request, message: str = "not found") -> web.Response:
    if request.path.startswith("/api/"):
        return _json({"error": message}, 404)
    return _html(pages.not_found_page(_units(request, request.app[SITE])), 404)


async def _ask(site: Site, hamsters: list[HamsterNow], request: web.Request) -> pages.Answer | None:
    """The form's answer, from the query string (the form is a GET: it works without JavaScript)."""
    distance = request.query.get("distance", "").strip()
    if not distance or not hamsters:
        return None
    units = _units(request, site)
    period = request.query.get("period", "tonight")
    labels = dict(pages.ASK_PERIODS)
    if period not in labels:
        return pages.Answer("Pick tonight, last night, this week or all time.", error=True)
    wanted = request.query.get("hamster", "").casefold()
    hamster = next((h for h in hamsters if h.name.casefold() == wanted), hamsters[0])
    try:
        metres = parse_distance(distance, units)
    except UserError as err:
        return pages.Answer(str(err), error=True)
    if period == "week":
        standings = await site.reads.standings("week", None)
        hamster_m = next(
            (e.distance_m for e in standings.entries if e.name == hamster.name)
            if standings
            else iter(()),
            None,
        )
    else:
        hamster_m = {
            "tonight": hamster.tonight_m,
            "last_night": hamster.last_night_m,
            "all_time": hamster.all_time_m,
        }[period]
    return pages.answer(metres, hamster.name, hamster_m, labels[period], units)


def _preview(site: Site, hamsters: list[HamsterNow], units: Units) -> pages.Preview:
    title, headline, lines = preview_text(hamsters, units)
    return pages.Preview(
        title=title,
        description=f"{headline}. " + ", ".join(lines) + ". Watch the wheel turn, live.",
        url=site.public_url + "/",
        image=site.public_url + "/preview.png",
    )


async def index(request: web.Request) -> web.Response:
    site = request.app[SITE]
    hamsters = site.hub.current()
    units = _units(request, site)
    reply = await _ask(site, hamsters, request)
    return _html(
        pages.hamster_page(
            hamsters,
            units,
            preview=_preview(site, hamsters, site.units),
            distance=request.query.get("distance", "")[:40],
            period=request.query.get("period", "tonight"),
            hamster=request.query.get("hamster", ""),
            reply=reply,
        )
    )


async def api_hamsters(request: web.Request) -> web.Response:
    return _json(pages.hamsters_json(request.app[SITE].hub.current()))


async def api_nights(request: web.Request) -> web.Response:
    site = request.app[SITE]
    text = request.query.get("days", "30")
    if not (text.isascii() and text.isdigit() and 1 <= int(text) <= MAX_NIGHTS):
        return _json({"error": f"days must be a whole number from 1 to {MAX_NIGHTS}"}, 400)
    key = (request.match_info["name"].casefold(), int(text))
    cached = site.nights.get(key)
    if cached is not None and time.monotonic() - cached[0] < NIGHTS_CACHE_SECONDS:
        return _json(cached[1])
    nights = await site.reads.nights(request.match_info["name"], int(text))
    if nights is None:
        return _not_found(request, "no such hamster")
    if len(site.nights) >= NIGHTS_CACHE_ENTRIES:
        site.nights.clear()
    payload = pages.nights_json(nights)
    site.nights[key] = (time.monotonic(), payload)
    return _json(payload)


async def api_league(request: web.Request) -> web.Response:
    period = request.query.get("period", "week").strip().lower()[:40] or "week"
    try:
        league = await request.app[SITE].reads.league(period)
    except UserError as err:
        return _json({"error": str(err)}, 400)
    return _json(pages.league_json(period, league))


def _race_link(request: web.Request) -> tuple[str, str] | None:
    """A race link's token and period, or None for a token no link can have."""
    token = request.match_info["token"]
    period = request.query.get("period", "week").strip().lower()[:40] or "week"
    return (token, period) if TOKEN.match(token) else None


async def _race(request: web.Request) -> tuple[str, str, Standings] | web.Response:
    site = request.app[SITE]
    link = _race_link(request)
    if link is None:
        return _not_found(request)
    token, period = link
    try:
        standings = await site.reads.standings(period, token)
    except UserError as err:
        if request.path.startswith("/api/"):
            return _json({"error": str(err)}, 400)
        return _html(pages.error_page(_units(request, site), str(err)), 400)
    if standings is None:
        return _not_found(request)
    return token, period, standings


async def race_page(request: web.Request) -> web.Response:
    found = await _race(request)
    if isinstance(found, web.Response):
        return found
    token, period, standings = found
    return _html(pages.race_page(token, period, standings, _units(request, request.app[SITE])))


async def api_race(request: web.Request) -> web.Response:
    found = await _race(request)
    if isinstance(found, web.Response):
        return found
    _, period, standings = found
    return _json(pages.standings_json(period, standings))


async def _stream(request: web.Request, viewer: Viewer) -> web.StreamResponse:
    hub = request.app[SITE].hub
    transport = request.transport
    if transport is not None:
        viewer.abort = transport.abort
    response = web.StreamResponse(
        headers={
            "Content-Type": "text/event-stream",
            "Cache-Control": "no-store",
            "X-Accel-Buffering": "no",  # nginx in front: pass events through at once
        }
    )
    try:
        await response.prepare(request)
        await response.write(b"retry: 2000\n\n")
        while True:
            # No timeout per wait or per write: with 200 viewers, asyncio.timeout around both
            # doubled the event loop's lag per update (benchmarks/web.py). The hub sends the
            # heartbeats, and aborts a viewer whose writes back up (``Viewer.send``).
            event = await viewer.queue.get()
            if event is None:
                break
            await response.write(event)
    except ConnectionError:
        pass  # the viewer went away or stopped reading
    finally:
        hub.unwatch(viewer)
    return response


async def live(request: web.Request) -> web.StreamResponse:
    return await _stream(request, request.app[SITE].hub.watch())


async def race_live(request: web.Request) -> web.StreamResponse:
    site = request.app[SITE]
    link = _race_link(request)
    if link is None:
        return _not_found(request)
    token, period = link
    try:
        viewer = await site.hub.watch_race(token, period)
    except UserError as err:
        return _json({"error": str(err)}, 400)
    if viewer is None:
        return _not_found(request)
    return await _stream(request, viewer)


async def preview_png(request: web.Request) -> web.Response:
    png = await request.app[SITE].preview.png()
    if png is None:
        return _not_found(request, "no preview image")
    return web.Response(
        body=png, content_type="image/png", headers={"Cache-Control": "public, max-age=300"}
    )


@web.middleware
async def _errors(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Friendly pages for unknown paths and wrong methods; a failure is logged, never shown."""
    try:
        return await handler(request)
    except web.HTTPNotFound:
        return _not_found(request)
    except web.HTTPMethodNotAllowed:
        response = _json({"error": "this site is read-only"}, 405)
        response.headers["Allow"] = "GET, HEAD"
        return response
    except web.HTTPException:
        raise
    except (asyncio.CancelledError, ConnectionError):
        raise
    except Exception:
        log.exception("The page failed on %s", request.path)
        return _html(pages.error_page(request.app[SITE].units, "Something went wrong."), 500)


async def _security_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers.update(SECURITY_HEADERS)


def build_app(
    reads: PageReads,
    *,
    units: Units,
    public_url: str,
    hub: LiveHub | None = None,
    preview: PreviewCache | None = None,
) -> web.Application:
    hub = hub or LiveHub(reads)
    if preview is None:

        async def draw() -> bytes | None:
            from bot.core.charts import preview_image  # lazy: matplotlib only when asked

            return await preview_image(*preview_text(hub.current(), units))

        preview = PreviewCache(draw)
    app = web.Application(middlewares=[_errors], client_max_size=MAX_REQUEST_BYTES)
    app[SITE] = Site(reads, hub, preview, units, public_url.rstrip("/"))
    app.on_response_prepare.append(_security_headers)
    app.on_shutdown.append(_on_shutdown)
    app.router.add_get("/", index)
    app.router.add_get("/r/{token}", race_page)
    app.router.add_get("/api/hamsters", api_hamsters)
    app.router.add_get("/api/hamsters/{name}/nights", api_nights)
    app.router.add_get("/api/race/{token}", api_race)
    app.router.add_get("/api/league", api_league)
    app.router.add_get("/api/live", live)
    app.router.add_get("/api/race/{token}/live", race_live)
    app.router.add_get("/preview.png", preview_png)
    app.router.add_static("/static/", STATIC, show_index=False, follow_symlinks=False)
    return app


async def _on_shutdown(app: web.Application) -> None:
    site = app[SITE]
    site.hub.close()
    await site.preview.close()


class WebServer:
    """The page on ``host:port``: ``start`` (returns the address), ``close``."""

    def __init__(self, reads: PageReads, settings: WebSettings, units: Units) -> None:
        self.settings = settings
        self.units = settings.units or units
        self.hub = LiveHub(reads)
        self._reads = reads
        self._runner: web.AppRunner | None = None
        self._hub_task: asyncio.Task[None] | None = None
        self.url = ""

    async def start(self, *, next_free: bool = False, tries: int = 20) -> str:
        """Listen; with ``next_free`` a taken port moves on to the next one (``demo``)."""
        await self.hub.refresh()
        host, port = self.settings.host, self.settings.port
        public = self.settings.public_url
        for attempt in range(tries if next_free else 1):
            app = build_app(
                self._reads,
                units=self.units,
                public_url=public or f"http://{_host_for_url(host)}:{port + attempt}",
                hub=self.hub,
            )
            runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
            await runner.setup()
            try:
                await web.TCPSite(runner, host, port + attempt).start()
            except OSError as err:
                await runner.cleanup()
                if err.errno != errno.EADDRINUSE or attempt + 1 >= (tries if next_free else 1):
                    raise
                continue
            self._runner = runner
            bound = runner.addresses[0]
            self.url = f"http://{_host_for_url(host)}:{bound[1]}"
            break
        self._hub_task = asyncio.create_task(self.hub.run(), name="web:refresh")
        log.info("The page is at %s", self.url)
        return self.url

    async def close(self) -> None:
        if self._hub_task is not None:
            self._hub_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._hub_task
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None


def _host_for_url(host: str) -> str:
    return f"[{host}]" if ":" in host else host
