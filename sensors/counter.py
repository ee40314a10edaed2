"""RevolutionCounter: cumulative sensor readings -> credited revolutions, exactly once.

Pure: no I/O and no clock. Times are UTC epoch seconds passed in by the caller, and everything needed
to continue after a restart lives in :class:`CounterState`, which the store persists in the same
transaction as the credited minutes.

The rules (DESIGN.md, "Counting rules"), with ``M = 2**bits`` and ``hw`` the high-water mark:

* The first reading of a brand-new wheel only sets the baseline ("baseline" event).
* ``fwd = (raw - hw) % M``, ``back = (hw - raw) % M``; differences are modular, so a counter
  wrapping past ``M - 1`` is credited exactly.
* ``fwd == 0``: a duplicate or a stationary repeat; nothing to credit.
* ``0 < back <= reverse_tolerance``: the wheel rocking backwards. Nothing is credited and ``hw``
  stays put, so the revolutions that bring the wheel back to ``hw`` are never counted twice.
* ``fwd <= allowed(elapsed)``: a plausible forward run; ``fwd`` is credited and ``hw`` moves.
* else ``raw <= allowed(elapsed)``: the sensor restarted from zero (battery swap, Set Cumulative
  Value); ``raw`` is credited from zero ("reset" event).
* else a glitch ("glitch" event): nothing credited and the baseline does not move, so one corrupt
  reading cannot make the next good one look like a reset. The glitch reading is kept in memory
  as a candidate; if the very next reading is again implausible against ``hw`` but a plausible
  forward step from the candidate, the sensor really jumped: ``hw`` moves there and the step from
  the candidate is credited ("rebaseline" event).

``allowed(elapsed) = floor(max_speed * max(elapsed, min_window_s) / circumference) + 1``; the
minimum window absorbs notification jitter, the ``+ 1`` a revolution completed right at the edge.

Time: a credit covers ``(previous accepted reading, this reading]`` and is ``estimated`` when that
interval is longer than ``gap_seconds`` (the store spreads it evenly).

A clock behind the last accepted reading (by more than ``clock_slack_s`` of receive jitter) is
usually a Raspberry Pi without a real-time clock after a power cut (fake-hwclock restores a time
up to an hour old until NTP answers) or an NTP step back. Readings are then *deferred*: nothing is
credited and nothing moves ("clock_behind" event, once per episode). The counter is cumulative, so
this loses nothing: the first reading once the clock has caught up credits everything since,
measured against the right elapsed time. A clock more than ``clock_wait_s`` behind means the stored
time was the wrong one (the clock used to run far ahead); the counter then follows the new clock
(``last_at`` moves back) and judges the reading with zero elapsed time, so at most that one
interval is lost rather than counting stopping for good.

Ambiguities no counter can resolve, resolved here as stated:

* A reading just below ``hw`` is rocking, never a reset: a sensor reset while its counter was
  at most ``reverse_tolerance`` is treated as rocking, and the revolutions up to the old ``hw``
  are not credited.
* A reset while the counter was within ``allowed`` of ``M`` looks like a forward wrap, and is
  credited as one (it over-credits by ``M - hw``).
* A corrupted reading that happens to be small (``<= allowed``) looks exactly like a reset and is
  credited as one; a corrupted reading just ahead of ``hw`` looks like running and is credited.
* Only ``fwd mod M`` is observable: a gap during which the wheel turned ``M - reverse_tolerance``
  revolutions or more (about 3 hours of hard running on a 16-bit counter, never on a 32-bit
  one) loses whole multiples of ``M``, or reads as rocking.
* On a rebaseline, whatever ran between the last good reading and the jump is unknowable and is
  not credited; the credit covers only the step after the jump.
* The rebaseline candidate is not persisted: a restart between the jump and the next reading
  turns that next reading into a glitch candidate itself, costing one more step.
* A repeat of the glitch candidate (a sensor stuck on the bad value) records no further event;
  it only refreshes the candidate's time.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

_LOGGER = logging.getLogger(__name__)

_KM_PER_H_IN_M_PER_S = 1000.0 / 3600.0


@dataclass(frozen=True, slots=True)
class CounterSettings:
    circumference_m: float
    bits: int = 32
    max_speed_kmh: float = 10.0
    reverse_tolerance: int = 16
    gap_seconds: float = 90.0
    min_window_s: float = 2.0
    clock_slack_s: float = 2.0  # receive-time jitter, not a clock stepping back
    clock_wait_s: float = 6 * 3600.0  # defer readings while the clock is at most this far behind

    def __post_init__(self) -> None:
        if not (math.isfinite(self.circumference_m) and self.circumference_m > 0):
            raise ValueError(f"circumference_m must be positive, got {self.circumference_m!r}")
        if not 1 <= self.bits <= 64:
            raise ValueError(f"bits must be between 1 and 64, got {self.bits!r}")
        if not (math.isfinite(self.max_speed_kmh) and self.max_speed_kmh > 0):
            raise ValueError(f"max_speed_kmh must be positive, got {self.max_speed_kmh!r}")
        if not 0 <= self.reverse_tolerance < 2**self.bits // 2:
            raise ValueError(
                f"reverse_tolerance must be between 0 and {2**self.bits // 2 - 1}, "
                f"got {self.reverse_tolerance!r}"
            )
        if not (math.isfinite(self.gap_seconds) and self.gap_seconds >= 0):
            raise ValueError(f"gap_seconds must be >= 0, got {self.gap_seconds!r}")
        if not (math.isfinite(self.min_window_s) and self.min_window_s >= 0):
            raise ValueError(f"min_window_s must be >= 0, got {self.min_window_s!r}")
        if not (0 <= self.clock_slack_s <= self.clock_wait_s and math.isfinite(self.clock_wait_s)):
            raise ValueError("need 0 <= clock_slack_s <= clock_wait_s, both finite")

    def allowed(self, elapsed: float) -> int:
        """The most revolutions a hamster at ``max_speed_kmh`` can turn in ``elapsed`` seconds."""
        window = max(elapsed, self.min_window_s, 0.0)
        speed_m_s = self.max_speed_kmh * _KM_PER_H_IN_M_PER_S
        return math.floor(speed_m_s * window / self.circumference_m) + 1


@dataclass(frozen=True, slots=True)
class CounterIdentity:
    """Which physical counter readings come from; a reading of another identity is a new counter.

    ``sensor`` is the source's name for the device (a BLE address, ``"simulated"``, the sensor an MQTT
    gateway reports), or None when the source cannot tell (a replayed capture): an unknown sensor
    continues whichever counter is there, and adopts the first sensor that names itself.
    ``counter_format`` is the ``[[hamsters]] counter_format`` and ``field`` the counter it carries
    (``"wheel"`` or ``"crank"`` for CSC, ``"counter"`` for a bare DIY counter).
    """

    sensor: str | None
    counter_format: str
    field: str

    def continues(self, reading: CounterIdentity) -> bool:
        """Whether a reading of identity ``reading`` continues this counter."""
        return (
            self.field == reading.field
            and self.counter_format == reading.counter_format
            and (self.sensor is None or reading.sensor is None or self.sensor == reading.sensor)
        )

    def __str__(self) -> str:
        return f"{self.sensor or 'an unnamed sensor'} ({self.counter_format} {self.field} counter)"


@dataclass(frozen=True, slots=True)
class CounterState:
    """What the store persists so that a restart continues exactly.

    ``identity`` None with a ``last_raw`` is a state saved before identities were recorded: its
    counter cannot be told from another one, so it is never continued.
    """

    last_raw: int | None
    high_water: int | None
    last_at: float | None
    identity: CounterIdentity | None = None


@dataclass(frozen=True, slots=True)
class Credit:
    """Revolutions turned in the interval ``(start, end]``."""

    revolutions: int
    start: float
    end: float
    estimated: bool


@dataclass(frozen=True, slots=True)
class CounterEvent:
    kind: str  # "baseline" | "reset" | "glitch" | "rebaseline" | "clock_behind"
    at: float
    detail: str


@dataclass(frozen=True, slots=True)
class Update:
    credit: Credit | None
    events: tuple[CounterEvent, ...]


_NOTHING = Update(credit=None, events=())


@dataclass(frozen=True, slots=True)
class _Candidate:
    raw: int
    at: float


class RevolutionCounter:
    """Turns one wheel's cumulative counter readings into credits and sensor events."""

    def __init__(self, settings: CounterSettings, state: CounterState | None = None) -> None:
        self._settings = settings
        # Carried along for the store; the caller decides whether a reading continues it.
        self.identity = state.identity if state is not None else None
        self._modulus = 2**settings.bits
        if state is None or state.last_raw is None:
            self._last_raw: int | None = None
            self._high_water = 0
            self._last_at = 0.0
        else:
            if state.last_at is None:
                raise ValueError("counter state has a last reading but no time for it")
            self._last_raw = state.last_raw % self._modulus
            # A state saved before high-water tracking existed: the last reading is the mark.
            high_water = state.last_raw if state.high_water is None else state.high_water
            self._high_water = high_water % self._modulus
            self._last_at = float(state.last_at)
        self._candidate: _Candidate | None = None
        self._clock_behind = False
        # ``settings.allowed(elapsed)`` for every elapsed time up to the minimum window (readings
        # a second apart, most of them), worked out once.
        self._min_window_s = settings.min_window_s
        self._allowed_in_min_window = settings.allowed(settings.min_window_s)

    @property
    def settings(self) -> CounterSettings:
        return self._settings

    @property
    def state(self) -> CounterState:
        if self._last_raw is None:
            return CounterState(None, None, None, self.identity)
        return CounterState(self._last_raw, self._high_water, self._last_at, self.identity)

    def update(self, raw: int, at: float) -> Update:
        """Account for one reading of the cumulative counter ``raw`` taken at ``at``."""
        if not math.isfinite(at):
            raise ValueError(f"reading time must be finite, got {at!r}")
        at = float(at)
        raw %= self._modulus
        if self._last_raw is None:
            self._accept(raw, at, new_high_water=True)
            return self._event("baseline", at, f"first reading {raw}, baseline set")

        settings = self._settings
        last_at = self._last_at
        behind = last_at - at
        if settings.clock_slack_s < behind <= settings.clock_wait_s:
            if self._clock_behind:
                return _NOTHING
            self._clock_behind = True
            detail = f"clock is {behind:.0f} s behind the last reading; waiting for it to catch up"
            return self._event("clock_behind", at, detail)
        self._clock_behind = False
        high_water = self._high_water
        back = (high_water - raw) % self._modulus

        # back == 0 (so fwd == 0): a duplicate or a stationary repeat; 0 < back <= tolerance: the
        # wheel rocking backwards. Either way nothing is credited and hw stays put. Most readings
        # end here, so this is _accept(raw, at, new_high_water=False) written out.
        if back <= settings.reverse_tolerance:
            self._candidate = None
            self._last_raw = raw
            self._last_at = at
            return _NOTHING
        forward = (raw - high_water) % self._modulus
        elapsed = at - last_at
        # Only now: most readings are repeats, and they need no speed limit.
        if elapsed <= self._min_window_s:
            allowed = self._allowed_in_min_window
        else:
            allowed = settings.allowed(elapsed)
        if forward <= allowed:
            # A plausible forward run, the usual credit: ``_credit`` and ``_accept`` written out.
            start = at if at < last_at else last_at  # min(last_at, at), as `_credit` has it
            self._candidate = None
            self._last_raw = self._high_water = raw
            self._last_at = at
            return Update(Credit(forward, start, at, (at - start) > settings.gap_seconds), ())
        if raw <= allowed:
            credit = self._credit(raw, self._last_at, at) if raw else None
            self._candidate = None
            self._accept(raw, at, new_high_water=True)
            detail = f"counter dropped {high_water} -> {raw}, credited {raw} from zero"
            return self._event("reset", at, detail, credit)
        return self._implausible(raw, at, elapsed, allowed)

    def _implausible(self, raw: int, at: float, elapsed: float, allowed: int) -> Update:
        candidate = self._candidate
        if candidate is not None:
            if raw == candidate.raw:
                self._candidate = _Candidate(raw, max(at, candidate.at))
                return _NOTHING
            step = (raw - candidate.raw) % self._modulus
            if step <= self._settings.allowed(at - candidate.at):
                credit = self._credit(step, candidate.at, at)
                detail = (
                    f"sensor jumped {self._high_water} -> {candidate.raw} and kept counting "
                    f"to {raw}, credited {step}"
                )
                self._candidate = None
                self._accept(raw, at, new_high_water=True)
                return self._event("rebaseline", at, detail, credit)
        self._candidate = _Candidate(raw, at)
        detail = (
            f"counter jumped {self._high_water} -> {raw} in {max(elapsed, 0.0):.1f} s "
            f"(at most {allowed} plausible), ignored"
        )
        return self._event("glitch", at, detail)

    def _accept(self, raw: int, at: float, *, new_high_water: bool) -> None:
        self._last_raw = raw
        if new_high_water:
            self._high_water = raw
        # Follows the clock even when it stepped back, so later intervals are measured on it.
        self._last_at = at

    def _credit(self, revolutions: int, since: float, at: float) -> Credit:
        start = min(since, at)
        return Credit(
            revolutions=revolutions,
            start=start,
            end=at,
            estimated=(at - start) > self._settings.gap_seconds,
        )

    @staticmethod
    def _event(kind: str, at: float, detail: str, credit: Credit | None = None) -> Update:
        # Debug only: the caller records and logs events with the wheel's name.
        _LOGGER.debug("wheel counter %s: %s", kind, detail)
        return Update(credit=credit, events=(CounterEvent(kind=kind, at=at, detail=detail),))
