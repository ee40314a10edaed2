"""Thin adapters: platform update -> CommandContext -> Reply -> platform message."""


class FrontendOff(Exception):
    """A failure no retry can fix (a rejected token): the frontend stays off until the next start."""
