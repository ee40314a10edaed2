"""The page's reads (``web.PageReads``): the application layer's read functions, for the public scope.

Live figures are stored totals plus what the wheel pipelines buffer, with no flush and no commit
(``bot.core.reads``). Names are cleaned for display as in the chats.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import datetime

from bot.core import reads
from bot.core.charts import RaceLine
from bot.core.commands import BotCore
from bot.core.model import HamsterNow, League, NightDistance, Standings
from bot.core.periods import last_night, parse_period
from bot.core.race import clean_name, race_chart_lines
from bot.wheels import WheelPipeline
from storage import chats as chat_store


class CoreReads:
    def __init__(
        self,
        core: BotCore,
        pipelines: Mapping[str, WheelPipeline] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.core = core
        self.clock = clock
        if pipelines:
            core.read_buffers({name: p.store for name, p in pipelines.items()})
        self.settings = reads.chat_settings(core.config, None)
        self.scope = core.scope_for(None)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock(), self.settings.tz)

    async def hamsters(self) -> list[HamsterNow]:
        return await reads.hamsters_now(self.core, self.scope, self._now(), self.settings)

    async def nights(self, name: str, days: int) -> list[NightDistance] | None:
        wanted = name.casefold()
        hamster = next(
            (h for h in self.core.in_scope(self.scope) if h.name.casefold() == wanted), None
        )
        if hamster is None:
            return None
        settings = self.settings
        last_morning = last_night(self._now(), settings.summary_time).end.date()
        return await reads.nights(self.core, hamster.name, settings, last_morning, days)

    async def standings(self, period: str, token: str | None) -> Standings | None:
        race = await self._race(period, token)
        return None if race is None else race[0]

    async def race_chart(self, period: str, token: str) -> list[RaceLine] | None:
        race = await self._race(period, token, lines=True)
        return None if race is None else race[1]

    async def _race(
        self, period: str, token: str | None, *, lines: bool = False
    ) -> tuple[Standings, list[RaceLine]] | None:
        core = self.core
        chat = None
        if token is not None:
            chat = await chat_store.chat_by_web_token(core.db, token)
            if chat is None:
                return None
        settings = reads.chat_settings(core.config, chat)
        now = datetime.fromtimestamp(self.clock(), settings.tz)
        span = parse_period(period, now=now, summary_time=settings.summary_time, default="week")
        scope = core.scope_for(chat)
        board = await reads.standings(core, scope, chat, span, now, settings, with_average=False)
        chart = []
        if lines:
            chart = await race_chart_lines(
                core, scope, chat, span, now.timestamp(), settings, board
            )
        entries = tuple(replace(e, name=clean_name(e.name)) for e in board.entries)
        return replace(board, entries=entries), chart

    async def league(self, period: str) -> League:
        settings = self.settings
        now = self._now()
        span = parse_period(period, now=now, summary_time=settings.summary_time, default="week")
        league = await reads.league(self.core, span, now, settings)
        entries = tuple(
            replace(e, name=clean_name(e.name), home=clean_name(e.home) if e.home else None)
            for e in league.entries
        )
        return replace(league, entries=entries)
