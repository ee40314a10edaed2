"""Keeping bot tokens out of every log line, whichever library writes it (both platforms)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable


class TokenRedactor(logging.Filter):
    """Replaces secrets in a record's message, arguments and traceback text with ``[token]``.

    Attached to handlers (a filter on a logger would miss records from its children).
    """

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self.secrets = sorted({s for s in secrets if s}, key=len, reverse=True)

    def redact(self, text: str) -> str:
        for secret in self.secrets:
            text = text.replace(secret, "[token]")
        return text

    def filter(self, record: logging.LogRecord) -> bool:
        if not self.secrets:
            return True
        try:
            message = record.getMessage()
        except Exception:
            return True  # a malformed log call: logging reports it; a filter must never raise
        redacted = self.redact(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.redact(record.stack_info)
        return True


def install_redactor(secrets: Iterable[str]) -> Callable[[], None]:
    """Attach a ``TokenRedactor`` to every root handler; returns a function that removes it."""
    redactor = TokenRedactor(secrets)
    handlers = list(logging.getLogger().handlers)
    for handler in handlers:
        handler.addFilter(redactor)

    def uninstall() -> None:
        for handler in handlers:
            handler.removeFilter(redactor)

    return uninstall
