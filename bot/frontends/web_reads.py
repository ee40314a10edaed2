"""Stop-gap: the page's reads over today's command core, until the application layer's read functions land.

Live figures are stored totals plus what the wheel pipelines buffer, with no flush and no commit.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from bot.core import parsing
from bot.core import race as race_core
from bot.core.commands import _NO_CHAT, BotCore, Hamster, last_night
from bot.core.model import (
    HamsterNow,
    NightDistance,
    SensorStatus,
    Standings,
    StandingsEntry,
)
from bot.wheels import WheelPipeline
from storage import chats as chat_store
from storage import queries


class CoreReads:
    def __init__(
        self,
        core: BotCore,
        pipelines: Mapping[str, WheelPipeline],
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.pipelines = pipelines
        self.clock = clock

    async def _live_metres(self, hamster: Hamster, start: float, end: float) -> float:
        stored = await self.core.hamster_metres(hamster, start, end)
        pipeline = self.pipelines.get(hamster.name)
        buffered = pipeline.store.buffered(start, end) if pipeline else 0
        return stored + hamster.metres(buffered)

    async def hamsters(self) -> list[HamsterNow]:
        core = self.core
        settings = core.settings_of(_NO_CHAT)
        now = self.clock()
        local_now = datetime.fromtimestamp(now, settings.tz)
        tonight = parsing.parse_period("tonight", now=local_now, summary_time=settings.summary_time)
        night = last_night(local_now, settings.summary_time)
        result = []
        for hamster in core.hamsters:
            so_far = await self._live_metres(hamster, tonight.start.timestamp(), now + 1)
            last = await self._live_metres(hamster, night.start.timestamp(), night.end.timestamp())
            total = await queries.wheel_total(core.db, hamster.wheel_id, 0, now + 1)
            pipeline = self.pipelines.get(hamster.name)
            revolutions = total.revolutions + (
                pipeline.store.buffered(0, now + 1) if pipeline else 0
            )
            live = core.live_status(hamster.name)
            status = (
                SensorStatus(
                    online=live.connected,
                    since=live.since,
                    last_reading_at=live.last_reading_at,
                    battery=live.battery,
                    source=live.source,
                )
                if live is not None
                else SensorStatus(online=None)
            )
            result.append(
                HamsterNow(
                    name=hamster.name,
                    home=None,
                    tonight_m=so_far,
                    last_night_m=last if last > 0 else None,
                    average_7_m=await core.night_average(hamster, settings, night.end.date()),
                    all_time_m=hamster.metres(revolutions),
                    revolutions=revolutions,
                    sensor=status,
                )
            )
        return result

    async def nights(self, name: str, days: int) -> list[NightDistance] | None:
        core = self.core
        hamster = next((h for h in core.hamsters if h.name.casefold() == name.casefold()), None)
        if hamster is None:
            return None
        settings = core.settings_of(_NO_CHAT)
        local_now = datetime.fromtimestamp(self.clock(), settings.tz)
        last_morning = last_night(local_now, settings.summary_time).end.date()
        metres = await core.nightly_metres(hamster, settings, last_morning, days)
        mornings = [last_morning - timedelta(days=n) for n in range(len(metres) - 1, -1, -1)]
        return [NightDistance(m, d) for m, d in zip(mornings, metres, strict=True)]

    async def standings(self, period: str, token: str | None) -> Standings | None:
        core = self.core
        chat = None
        if token is not None:
            chat = await chat_store.chat_by_web_token(core.db, token)
            if chat is None:
                return None
        settings = core.settings_of(chat or _NO_CHAT)
        now = self.clock()
        local_now = datetime.fromtimestamp(now, settings.tz)
        span = parsing.parse_period(
            period, now=local_now, summary_time=settings.summary_time, default="week"
        )
        start, end = span.start.timestamp(), min(span.end.timestamp(), now + 1)
        runners = [
            race_core.Runner(
                h.name,
                await self._live_metres(h, start, end),
                is_hamster=True,
                key=h.wheel_id,
            )
            for h in core.hamsters
        ]
        if chat is not None:
            for total in await queries.person_totals(core.db, chat.id, start, end):
                runners.append(
                    race_core.Runner(total.display_name, total.distance_m, key=total.person_id)
                )
        entries = tuple(
            StandingsEntry(
                rank=row.rank,
                name=race_core.clean_name(row.runner.name),
                kind="hamster" if row.runner.is_hamster else "person",
                distance_m=row.runner.distance_m,
                gap_m=row.gap_m,
            )
            for row in race_core.standings(runners)
        )
        return Standings(span.label, span.start, span.end, entries)
