"""When a reading can have happened: the one check on a reading's time before it is counted.

A reading's time comes from outside: a capture file (epoch seconds, possibly written in milliseconds by
mistake), a gateway over MQTT, or this machine's clock. One implausible time would poison a wheel's history:
stored in the year 57,900 it makes every later reading look "already counted"; a huge value overflows SQLite's
integers; a negative one cannot be shown as a date. So (DESIGN.md, counting rules) a reading is plausible when

* it is not before ``EARLIEST_READING`` (2000-01-01 UTC: no hamster of ours ran earlier), and
* it is at most ``MAX_AHEAD_S`` past the reader's clock (receive jitter and a gateway's slightly fast clock).

An old capture replayed into a new database is plausible: there is no lower bound but the year 2000. An
implausible reading counts as malformed: it is never stored and never moves the counter's baseline.
"""

from __future__ import annotations

import math

EARLIEST_READING = 946_684_800.0  # 2000-01-01T00:00:00Z
MAX_AHEAD_S = 300.0


def plausible_reading_time(at: float, now: float) -> bool:
    """Whether a reading taken at ``at`` (epoch s) can be real when the reader's clock says ``now``."""
    return math.isfinite(at) and EARLIEST_READING <= at <= now + MAX_AHEAD_S
