"""The morning-report scheduler: one platform-neutral loop for every chat, with an injected clock.

Each tick reads every chat (a row in ``chats``), works out from the chat's own settings whether a report is due
(``due_reports``, pure), and starts one delivery task per due chat and night. Deliveries run side by side, so a
chat whose platform is failing never delays another chat's report.

The summary log is keyed by the *local date of the morning* (``night`` = ``"2026-11-29"``), not by the summary
time. So:

* A settings change takes effect on the next tick (chats are re-read every tick). Moving the time later after
  today's report went out does not send a second one; moving it earlier than now sends today's at once.
* DST: a summary time that does not exist on a spring-forward day (02:30 in New York) resolves to the instant the
  wall clock skips to (03:30 EDT), once; a time that happens twice on a fall-back day (01:30) is the first one.
  Either way the day has one key, so it gets exactly one report.

Catch-up: a report is *on time* within ``LATE_AFTER`` of its scheduled instant; after that (the process was
down, or a chat just switched its time to earlier) it is posted marked late, but only before the chat's local
``catch_up_until`` (config ``[summary] catch_up_until``, default 12:00). When the summary time itself is at or
after the cut-off, only the on-time window applies. A chat that first uses the bot after its report time, while
the process was running, starts with the next morning's report instead of a late one.

Crash between sending and recording: **at most one duplicate, per part**. A report a platform posts as several
messages (Telegram: the chart, then text of up to 4096 characters a message; Discord: 2000) is sent one part at a
time (``parts``: platform -> the split its sender posts one message each), and each part is recorded in the
summary log as soon as the platform confirmed it; the whole night is recorded after the last part. A retry after
a failed part, or a restarted process, sends only the parts not recorded. A crash in the few milliseconds between
the chat API's answer and the commit leaves that one part unrecorded, and it is posted once more (late, if it
is) before the cut-off.
The alternative, recording first, would turn every crash *and every restart during the retry hour* into a
silently lost report; a repeated morning message is visible and harmless, a missing one is neither.

Send failures: any exception from a sender is retried with exponential backoff (30 s doubling to 10 min, with a
little jitter) for up to an hour from the first attempt. An error with ``retry_after`` (``DeliveryError``,
Telegram's ``RetryAfter``: HTTP 429) waits at least that long; ``DeliveryError(permanent=True)`` or a chat
library's ``Forbidden``/``NotFound`` (the bot was removed from the chat) gives up at once. A night that was given
up, or sent but not recorded (database error), is not tried again by this process.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import math
import random
import time as _time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from bot.core.model import ChatSettings
from bot.core.periods import local_instant
from bot.core.reads import chat_settings
from bot.core.registry import Reply
from sensors.backoff import backoff_delay
from storage import chats as chat_store
from storage.chats import Chat

if TYPE_CHECKING:
    from bot.core.commands import BotCore

log = logging.getLogger(__name__)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Sender = Callable[[Chat, Reply], Awaitable[None]]
"""Posts a reply to a chat of one platform; raises on failure (``DeliveryError`` for specifics)."""
PartSplit = Callable[[Reply], list[Reply]]
"""A platform's split of a reply into the parts its sender posts as one message each."""


def whole(reply: Reply) -> list[Reply]:
    """The split of a platform that posts every reply as one message."""
    return [reply]


LATE_AFTER = 15 * 60.0  # seconds after the summary time that still count as on time
TICK_SECONDS = 30.0


class DeliveryError(Exception):
    """A sender's failure with hints for the retry loop (any other exception is retried as transient)."""

    def __init__(
        self, message: str, *, retry_after: float | None = None, permanent: bool = False
    ) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.permanent = permanent


@dataclass(frozen=True, slots=True)
class Due:
    """One chat's report that should go out now."""

    night: str  # the summary-log key: the local date of the morning, ISO
    day: date
    scheduled: datetime  # aware, in the chat's timezone
    late: bool


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    first_delay: float = 30.0
    max_delay: float = 600.0
    give_up_after: float = 3600.0
    jitter: float = (
        0.2  # up to 20 % shorter, so chats that failed together do not retry in lockstep
    )


def scheduled_at(day: date, clock: time, tz: ZoneInfo) -> datetime:
    """``clock`` on local ``day`` as an instant that happened (fold=0: gaps skip ahead, repeats take the first)."""
    return local_instant(day, clock, tz)


def catch_up_deadline(
    day: date,
    summary_time: time,
    catch_up_until: time,
    tz: ZoneInfo,
    late_after: float = LATE_AFTER,
) -> float:
    """Epoch seconds before which ``day``'s report may still be posted."""
    on_time = scheduled_at(day, summary_time, tz).timestamp() + late_after
    return max(on_time, scheduled_at(day, catch_up_until, tz).timestamp())


def due_reports(
    now: float,
    settings: ChatSettings,
    catch_up_until: time,
    *,
    late_after: float = LATE_AFTER,
) -> list[Due]:
    """The reports that may go out at ``now`` for a chat with ``settings``, oldest first.

    Yesterday is looked at too, so a report whose window runs past local midnight (a 23:50 summary time) is
    not lost to the date change. The caller drops the nights already in the summary log.
    """
    if not settings.summary_enabled:
        return []
    tz = settings.tz
    today = datetime.fromtimestamp(now, tz).date()
    due = []
    for day in (today - timedelta(days=1), today):
        scheduled = scheduled_at(day, settings.summary_time, tz)
        start = scheduled.timestamp()
        if (
            start
            <= now
            < catch_up_deadline(day, settings.summary_time, catch_up_until, tz, late_after)
        ):
            due.append(Due(day.isoformat(), day, scheduled, late=now - start > late_after))
    return due


def retry_delays(policy: RetryPolicy, rng: random.Random | None = None) -> Iterator[float]:
    """Backoff delays (``sensors.backoff``): first_delay, doubling, capped at max_delay, each
    jittered into its top ``policy.jitter``."""
    for attempt in itertools.count():
        draw = rng.random() if rng is not None else 1.0
        yield backoff_delay(
            attempt, policy.first_delay, policy.max_delay, draw, spread=policy.jitter
        )


Composer = Callable[[Chat, ChatSettings, Due], Awaitable[Reply]]

# The chat libraries' "you may not post here" errors (telegram.error.Forbidden, discord.Forbidden and
# discord.NotFound), recognised by name so this module stays free of chat-library imports.
_PERMANENT_ERRORS = frozenset({"Forbidden", "NotFound"})


def _retry_after(err: BaseException) -> float | None:
    """Seconds the server asked us to wait (DeliveryError, telegram's RetryAfter: int or timedelta)."""
    value = getattr(err, "retry_after", None)
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, int | float) and math.isfinite(value) and value > 0:
        return float(value)
    return None


def _is_permanent(err: BaseException) -> bool:
    if isinstance(err, DeliveryError):
        return err.permanent
    return any(cls.__name__ in _PERMANENT_ERRORS for cls in type(err).__mro__)


class SummaryScheduler:
    """Posts each chat's morning report once a day; see the module docstring for the guarantees."""

    def __init__(
        self,
        core: BotCore,
        senders: Mapping[str, Sender],
        *,
        parts: Mapping[str, PartSplit] | None = None,
        compose: Composer | None = None,
        clock: Clock = _time.time,
        sleep: Sleep = asyncio.sleep,
        policy: RetryPolicy | None = None,
        tick_seconds: float = TICK_SECONDS,
        rng: random.Random | None = None,
    ) -> None:
        self.core = core
        self.senders = dict(senders)
        self.parts = dict(parts or {})
        self._compose = compose or self._compose_report
        self.clock = clock
        self.sleep = sleep
        self.policy = policy or RetryPolicy()
        self.tick_seconds = tick_seconds
        self._rng = rng or random.Random()
        self._in_flight: dict[tuple[int, str], asyncio.Task[bool]] = {}
        self._finished_nights: set[tuple[int, str]] = set()
        self._recording: set[tuple[int, str]] = set()
        self._known_chats: set[int] = set()
        self._broken_chats: set[int] = set()
        self._first_tick: float | None = None

    @property
    def in_flight(self) -> list[asyncio.Task[bool]]:
        """Deliveries still running (composing, sending or waiting to retry)."""
        return [task for task in self._in_flight.values() if not task.done()]

    async def run(self) -> None:
        """Tick forever; a failing tick (say, a locked database) is logged and the next one tries again."""
        try:
            while True:
                try:
                    await self.tick()
                except Exception:
                    log.exception("morning report: checking the chats failed; trying again soon")
                await self.sleep(self.tick_seconds)
        finally:
            await self.close()

    async def tick(self) -> list[asyncio.Task[bool]]:
        """Start a delivery for every chat whose report is due now and not yet sent; returns the new ones."""
        now = self.clock()
        chats = await chat_store.list_chats(self.core.db)
        if self._first_tick is None:
            self._first_tick = now  # the first tick that saw the chats, not one that failed
        started = []
        for chat in chats:
            if chat.platform not in self.senders:
                continue  # e.g. the terminal chat: nobody to post to
            is_new = chat.id not in self._known_chats
            self._known_chats.add(chat.id)
            try:
                settings = chat_settings(self.core.config, chat)
                due_now = due_reports(now, settings, self.core.config.summary.catch_up_until)
            except Exception as err:  # e.g. a zone dropped from tzdata: skip this chat, not all
                if chat.id not in self._broken_chats:
                    log.error(
                        "morning report for %s: its settings are unusable: %s", chat.label, err
                    )
                self._broken_chats.add(chat.id)
                continue
            self._broken_chats.discard(chat.id)
            for due in due_now:
                key = (chat.id, due.night)
                if key in self._in_flight or key in self._finished_nights:
                    continue
                if is_new and due.late and self._first_tick < due.scheduled.timestamp():
                    # The chat first spoke to us after this morning's report time while we were
                    # running: it starts with tomorrow's report, not an apology for a late one.
                    self._finished_nights.add(key)
                    continue
                if await chat_store.summary_sent(self.core.db, chat.id, due.night):
                    continue
                task = asyncio.create_task(
                    self._deliver(chat, settings, due), name=f"summary:{chat.label}:{due.night}"
                )
                self._in_flight[key] = task
                task.add_done_callback(functools.partial(self._finished, key))
                started.append(task)
        return started

    def _finished(self, key: tuple[int, str], _task: object = None) -> None:
        task = self._in_flight.pop(key, None)
        if task is None or task.cancelled():
            return
        # Delivered or given up: either way this process does not try that night again.
        self._finished_nights.add(key)
        if task.exception() is not None:
            log.error(
                "morning report for chat %d (%s) failed", key[0], key[1], exc_info=task.exception()
            )

    async def close(self) -> None:
        """Cancel the deliveries in flight (their nights stay unrecorded, so a restart retries them).

        A delivery already sent and now recording is let finish: cancelling it would turn a clean shutdown
        into the duplicate that only a crash should cause.
        """
        tasks = list(self._in_flight.items())
        for key, task in tasks:
            if key not in self._recording:
                task.cancel()
        for _, task in tasks:
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass

    async def _compose_report(self, chat: Chat, settings: ChatSettings, due: Due) -> Reply:
        from bot.core.summary import compose_report

        # No flush: the report reads what is stored plus what the wheels still buffer.
        return await compose_report(self.core, chat, due.day, late=due.late)

    async def _deliver(self, chat: Chat, settings: ChatSettings, due: Due) -> bool:
        """Compose, send with retries, then record. True when delivered (or already recorded)."""
        sender = self.senders[chat.platform]
        first_attempt = self.clock()
        delays = retry_delays(self.policy, self._rng)
        split = self.parts.get(chat.platform, whole)
        reply: Reply | None = None
        sent: set[int] | None = None  # parts already out, this process's or an earlier one's
        attempt = 0
        while True:
            attempt += 1
            try:
                # Composed once; a failure to compose is retried like a failure to send.
                if reply is None:
                    reply = await self._compose(chat, settings, due)
                if sent is None:
                    sent = await chat_store.summary_parts_sent(self.core.db, chat.id, due.night)
                await self._send_parts(chat, due, sender, split(reply), sent)
                break
            except asyncio.CancelledError:
                raise
            except Exception as err:
                delay = next(delays)
                retry_after = _retry_after(err)
                if retry_after is not None:
                    delay = max(delay, retry_after)
                if _is_permanent(err):
                    log.warning(
                        "morning report for %s (%s) not sent, giving up: %s",
                        chat.label,
                        due.night,
                        err,
                    )
                    return False
                if self.clock() + delay - first_attempt > self.policy.give_up_after:
                    log.warning(
                        "morning report for %s (%s) not sent after %d tries in an hour; giving up: %s",
                        chat.label,
                        due.night,
                        attempt,
                        err,
                    )
                    return False
                log.info(
                    "morning report for %s (%s): try %d failed (%s); retrying in %.0f s",
                    chat.label,
                    due.night,
                    attempt,
                    err,
                    delay,
                )
                await self.sleep(delay)
        # Delivered: from here on a crash means one duplicate after restart, never a lost report.
        key = (chat.id, due.night)
        self._recording.add(key)
        try:
            await chat_store.record_summary(
                self.core.db, chat.id, due.night, self.clock(), due.late
            )
        except Exception:
            # Not resent by this process (it remembers the night); only a restart could repeat it.
            log.exception("morning report for %s (%s) sent but not recorded", chat.label, due.night)
        finally:
            self._recording.discard(key)
        log.info(
            "morning report for %s (%s) sent%s", chat.label, due.night, " late" if due.late else ""
        )
        return True

    async def _send_parts(
        self, chat: Chat, due: Due, sender: Sender, parts: list[Reply], sent: set[int]
    ) -> None:
        """Post the parts not yet out, recording each as soon as the platform confirmed it."""
        key = (chat.id, due.night)
        for index, part in enumerate(parts):
            if index in sent:
                continue
            await sender(chat, part)
            sent.add(index)  # not resent by this process, even if recording it fails
            self._recording.add(key)
            try:
                await chat_store.record_summary_part(
                    self.core.db, chat.id, due.night, index, self.clock(), due.late
                )
            except Exception:
                log.exception(
                    "morning report for %s (%s): part %d sent but not recorded",
                    chat.label,
                    due.night,
                    index,
                )
            finally:
                self._recording.discard(key)
