"""The values every face reads: chats, the CLI, the web page and the league render these, nothing else.

Figures are in metres (floats) and instants in UTC epoch seconds or aware datetimes; units and wording
belong to the renderers. ``None`` means "no data", which renderers show differently from zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal


@dataclass(frozen=True, slots=True)
class Scope:
    """The hamsters a chat (or the public page) may see, by name. The league narrows it per chat."""

    hamsters: frozenset[str]

    def __contains__(self, name: object) -> bool:
        return name in self.hamsters


@dataclass(frozen=True, slots=True)
class SensorStatus:
    """What the wheel link knows right now (not stored)."""

    online: bool | None  # None: no live sensor (replay only, or never started)
    since: float | None = None
    last_reading_at: float | None = None
    battery: int | None = None
    source: str = ""  # "simulated", a BLE address, "mqtt:HOME/WHEEL"...


@dataclass(frozen=True, slots=True)
class HamsterNow:
    """One hamster at one instant: the figures of /hamster, the page's cards and /api/hamsters."""

    name: str
    home: str | None
    tonight_m: float  # since the last summary time, stored plus what the pipeline buffers
    last_night_m: float | None  # None: no revolution at all last night (sensor off)
    average_7_m: float | None  # nights with data among the last 7
    all_time_m: float
    revolutions: int  # all time, live
    sensor: SensorStatus

    @property
    def online(self) -> bool | None:
        return self.sensor.online


@dataclass(frozen=True, slots=True)
class NightDistance:
    morning: date  # the morning the night ends
    distance_m: float


@dataclass(frozen=True, slots=True)
class StandingsEntry:
    rank: int
    name: str
    kind: Literal["hamster", "person"]
    distance_m: float
    gap_m: float | None  # to the leading hamster: positive = behind; None for hamsters


@dataclass(frozen=True, slots=True)
class Standings:
    """A chat's race for one period."""

    period_label: str
    start: datetime
    end: datetime
    entries: tuple[StandingsEntry, ...]
