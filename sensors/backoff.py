"""How long to wait before trying again: the one backoff rule of every loop that retries.

The BLE link reconnecting, a chat frontend restarting under ``bot.app.supervise`` and a morning report
being resent all wait ``initial`` doubling up to ``cap``, jittered so that several of them (or several
Pis beside several cages) do not retry in lockstep. It lives here because ``sensors`` imports nothing of
``bot``, while ``bot`` may import ``sensors``.
"""

from __future__ import annotations


def backoff_delay(
    attempt: int, initial: float, cap: float, jitter: float, *, spread: float = 0.5
) -> float:
    """Seconds to wait before retry number ``attempt`` (0-based): ``initial`` doubling up to ``cap``,
    then scaled by ``jitter`` (a random draw in [0, 1]) into the top ``spread`` of that step: with the
    default, anywhere from half the step (jitter 0) to all of it (jitter 1)."""
    step = min(initial * 2 ** min(attempt, 64), cap)
    draw = min(max(jitter, 0.0), 1.0)
    return step * (1.0 - spread * (1.0 - draw))
