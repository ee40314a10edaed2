"""A real Mosquitto for the tests: started on a free loopback port with a config file we write.

The binary is Debian's (``.ci/run`` installs ``mosquitto`` when it is missing). In CI (``CI=true``)
a missing binary fails the test; elsewhere it skips with the reason. The package's own service
is never used: every test starts its own broker, in its own folder, on its own port.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest

MISSING = "Debian's mosquitto is not installed (apt-get install mosquitto)"


def find_mosquitto() -> str | None:
    """The broker binary (Debian puts it in /usr/sbin, often not on a user's PATH)."""
    return shutil.which("mosquitto") or (
        "/usr/sbin/mosquitto" if os.access("/usr/sbin/mosquitto", os.X_OK) else None
    )


def mosquitto_binary() -> str:
    """For tests: the binary, or fail in CI (``CI=true``) / skip elsewhere, saying why."""
    found = find_mosquitto()
    if found is None:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(MISSING)
        pytest.skip(MISSING)
    return found


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class Mosquitto:
    """One broker process; ``stop`` and ``start`` again keep its port and its persistence."""

    def __init__(
        self,
        folder: Path,
        *,
        users: dict[str, str] | None = None,
        binary: str | None = None,
        tls: tuple[Path, Path] | None = None,
    ) -> None:
        self.binary = binary or mosquitto_binary()
        self.folder = folder
        self.folder.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.url = f"{'mqtts' if tls else 'mqtt'}://127.0.0.1:{self.port}"
        self.log = folder / "mosquitto.log"
        self._process: asyncio.subprocess.Process | None = None
        lines = [
            f"listener {self.port} 127.0.0.1",
            # Run as root (CI), Mosquitto would switch to the "mosquitto" user, who cannot write here.
            "user root",
            "persistence true",
            f"persistence_location {folder}/",
            "max_queued_messages 100000",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
        ]
        if tls:  # (certificate, key): a TLS listener, as mqtts:// brokers have
            lines += [f"certfile {tls[0]}", f"keyfile {tls[1]}"]
        if users:
            passwords = folder / "passwords"
            passwords.write_text("", encoding="utf-8")
            for user, password in users.items():
                passwd = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
                subprocess.run([passwd, "-b", str(passwords), user, password], check=True)
            lines += ["allow_anonymous false", f"password_file {passwords}"]
        else:
            lines.append("allow_anonymous true")
        self.config = folder / "mosquitto.conf"
        self.config.write_text("\n".join(lines) + "\n", encoding="utf-8")

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        with self.log.open("ab") as log:
            self._process = await asyncio.create_subprocess_exec(
                self.binary,
                "-c",
                str(self.config),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        async with asyncio.timeout(10):
            while True:
                if self._process.returncode is not None:
                    raise RuntimeError(f"mosquitto exited: {self.log.read_text(errors='replace')}")
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", self.port)
                except OSError:
                    await asyncio.sleep(0.02)
                    continue
                writer.close()
                await writer.wait_closed()
                return

    async def stop(self) -> None:
        """SIGTERM: Mosquitto saves its persistence (sessions, queued messages) and exits."""
        process, self._process = self._process, None
        if process is None or process.returncode is not None:
            return
        process.terminate()
        try:
            async with asyncio.timeout(10):
                await process.wait()
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()


def self_signed_certificate(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 that is its own CA (openssl), and its key."""
    cert, key = folder / "broker.crt", folder / "broker.key"
    folder.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "2",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(key),
            "-out",
            str(cert),
        ],
        check=True,
        capture_output=True,
    )
    return cert, key
