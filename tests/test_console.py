"""The terminal chat as a person uses it: a real terminal (pty), line editing, plain words."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


class Terminal:
    """``hamsterbot console`` on a pseudo-terminal: type keys, read what the screen shows."""

    def __init__(self, cwd: Path) -> None:
        self.controller, terminal = pty.openpty()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bot", "console", "--db", "t.db"],
            cwd=cwd,
            stdin=terminal,
            stdout=terminal,
            stderr=terminal,
            env={**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT), "TERM": "xterm"},
            close_fds=True,
        )
        os.close(terminal)
        self.screen = ""

    def wait_for(self, text: str, after: int = 0) -> int:
        """Read until ``text`` shows after position ``after``; returns where it ends."""
        while text not in self.screen[after:]:
            ready, _, _ = select.select([self.controller], [], [], 60)
            assert ready, f"waited a minute for {text!r}; the screen shows:\n{self.screen}"
            self.screen += os.read(self.controller, 65536).decode(errors="replace")
        return self.screen.index(text, after) + len(text)

    def type(self, keys: str) -> None:
        os.write(self.controller, keys.encode())

    def close(self) -> int:
        self.type("\x04")  # Ctrl-D
        try:
            code = self.process.wait(timeout=60)
        finally:
            os.close(self.controller)
        return code


LEFT, UP = "\x1b[D", "\x1b[A"


def test_console_has_line_editing_and_history(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    try:
        at = term.wait_for("> ")
        # "race" typed, the cursor moved back to the start, "/" put in front: "/race".
        term.type("race" + LEFT * 4 + "/\r")
        at = term.wait_for("Race, this week", at)
        at = term.wait_for("> ", at)
        term.type(UP + "\r")  # the last line again, from the history
        at = term.wait_for("Race, this week", at)
        term.wait_for("> ", at)
    finally:
        assert term.close() == 0


def test_plain_words_point_to_the_commands(tmp_path: Path) -> None:
    term = Terminal(tmp_path)
    try:
        at = term.wait_for("> ")
        term.type("hello\r")
        at = term.wait_for("/help lists them all", at)
        assert "I don't know /hello" not in term.screen
        term.type("race\r")  # a bare command word is still a command
        at = term.wait_for("Race, this week", at)
        term.wait_for("> ", at)
    finally:
        assert term.close() == 0


def test_the_terminal_user_is_the_login_name_not_you(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LOGNAME": "alice", "USER": "alice"}

    def say(text: str) -> str:
        result = subprocess.run(
            [sys.executable, "-m", "bot", "say", "--db", "t.db", text],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
        )
        assert result.returncode == 0, result.stderr
        return result.stdout

    assert "for alice." in say("/logrun 5 km")
    race = say("/race")
    assert "alice: 3.11 mi" in race and "you" not in race


def test_ctrl_c_at_the_prompt_leaves_the_terminal_as_it_was(tmp_path: Path) -> None:
    import fcntl
    import termios

    controller, terminal = pty.openpty()
    before = termios.tcgetattr(terminal)

    def own_terminal() -> None:  # the pty becomes the child's controlling terminal: Ctrl-C works
        os.setsid()
        fcntl.ioctl(0, termios.TIOCSCTTY, 0)

    process = subprocess.Popen(
        [sys.executable, "-m", "bot", "console", "--db", "t.db"],
        cwd=tmp_path,
        stdin=terminal,
        stdout=terminal,
        stderr=terminal,
        env={**os.environ, "PYTHONPATH": str(ROOT), "TERM": "xterm"},
        preexec_fn=own_terminal,
    )
    try:
        screen = ""
        while "> " not in screen:
            ready, _, _ = select.select([controller], [], [], 60)
            assert ready, screen
            screen += os.read(controller, 65536).decode(errors="replace")
        os.write(controller, b"\x03")
        assert process.wait(timeout=60) == 0
        after = termios.tcgetattr(terminal)
        assert after[3] & (termios.ICANON | termios.ECHO) == before[3] & (
            termios.ICANON | termios.ECHO
        )
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(terminal)
        os.close(controller)


def test_a_picture_or_file_that_cannot_be_saved_is_said_and_the_chat_goes_on(
    tmp_path: Path,
) -> None:
    """`say --image-dir` (or the demo's) on a folder that cannot be made: a line, not a traceback."""
    nowhere = "/proc/hamsterbot-no-such-folder"
    for text in ("/chart", "/export"):
        result = subprocess.run(
            [sys.executable, "-m", "bot", "say", "--db", "c.db", "--image-dir", nowhere, text],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
            env={**os.environ, "TZ": "UTC", "PYTHONPATH": str(ROOT)},
        )
        assert result.returncode == 0, result.stderr[-800:]
        assert "Traceback" not in result.stderr
        assert f"not saved, {nowhere} cannot be written" in result.stdout
