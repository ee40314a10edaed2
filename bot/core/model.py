"""The values every face reads: chats, the CLI, the web page and the league render these, nothing else.

Figures are in metres (floats) and instants in UTC epoch seconds or aware datetimes; units and wording
belong to the renderers. ``None`` means "no data", which renderers show differently from zero.

The read functions that produce them live in ``bot.core.reads`` (store + scope + time -> values, no writes):
``hamsters_now`` -> list[HamsterNow], ``nights`` -> list[NightDistance], ``standings`` -> Standings,
``hamster_stats`` -> list[Stats], and ``bot.core.summary.gather_report`` -> NightReport.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, time
from typing import TYPE_CHECKING, Literal
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from bot.core.stats import NightStats, Records
    from storage.queries import PersonTotal

Units = Literal["mi", "km"]


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
    speed_mps: float | None = None  # from the latest credited readings; None once disconnected

    @property
    def connected(self) -> bool | None:
        return self.online


NO_SENSOR = SensorStatus(online=None)


@dataclass(frozen=True, slots=True)
class ChatSettings:
    """A chat's effective settings: its own, else the configured defaults (``reads.chat_settings``)."""

    timezone: str
    units: Units
    summary_time: time
    summary_enabled: bool

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


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
    units: Units | None = None  # a person's own units, when set
    key: int = 0  # wheel id or person id: stable across names


@dataclass(frozen=True, slots=True)
class Standings:
    """A chat's race for one period."""

    period_label: str
    start: datetime
    end: datetime
    entries: tuple[StandingsEntry, ...]
    period_key: str = ""
    leader_average_7_m: float | None = (
        None  # the leading hamster's 7-night average: "hamster nights"
    )

    @property
    def leader(self) -> StandingsEntry | None:
        return next((e for e in self.entries if e.kind == "hamster"), None)


@dataclass(frozen=True, slots=True)
class LeagueEntry:
    rank: int
    name: str
    home: str | None  # None: beside the bot (no gateway, no [gateway] home)
    distance_m: float
    online: bool | None = None  # the wheel's link (a gateway's status for MQTT wheels)


@dataclass(frozen=True, slots=True)
class League:
    """Every hamster the bot knows, ranked by distance over one period: ``/league``, ``/api/league``."""

    period_label: str
    start: datetime
    end: datetime
    entries: tuple[LeagueEntry, ...]
    period_key: str = ""


@dataclass(frozen=True, slots=True)
class Stats:
    """What ``/hamster stats`` says about one hamster; every figure already computed."""

    name: str
    tonight_m: float
    last_night: NightStats
    week_average_m: float | None  # over the last 7 complete nights with data
    all_time_m: float
    all_time_revolutions: int
    records: Records
    streak_nights: int = 0


@dataclass(frozen=True, slots=True)
class Night:
    """The night a morning report is about: summary time to summary time."""

    day: date  # the local date of the morning
    start: datetime  # aware, in the chat's timezone
    end: datetime  # the summary time on ``day``

    @property
    def key(self) -> str:
        return self.day.isoformat()


@dataclass(frozen=True, slots=True)
class SensorHealth:
    offline: tuple[tuple[float, float], ...]  # offline stretches inside the night, epoch seconds
    still_offline: bool  # the last stretch lasts to the end of the night
    online: bool | None  # connected for some of the night; None: the link never reported
    battery: int | None  # the newest battery reading up to the end of the night, per cent

    @property
    def offline_all_night(self) -> bool:
        return self.online is False and len(self.offline) == 1 and self.still_offline


@dataclass(frozen=True, slots=True)
class HamsterNight:
    name: str
    stats: NightStats
    previous_m: float | None  # the night before; None without data
    average_m: float | None  # over the nights with data among the 7 before
    health: SensorHealth


@dataclass(frozen=True, slots=True)
class NightReport:
    """The morning report's values for one chat and one night."""

    night: Night
    units: Units
    hamsters: tuple[HamsterNight, ...]
    runners: (
        tuple[PersonTotal, ...] | None
    )  # people's runs in the night; None: no chat to ask about
    race: Standings | None
    race_label: str
    late: bool = False


def night_average(night_metres: list[float]) -> float | None:
    """The average of the nights with data: a night without a revolution (sensor off) is no rest night."""
    with_data = [metres for metres in night_metres if metres > 0]
    return sum(with_data) / len(with_data) if with_data else None
