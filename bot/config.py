"""TOML configuration -> frozen dataclasses, with errors that name the file and the key.

Every key is declared once in ``_SCHEMA``; ``config.example.toml`` documents the same keys. Tokens may also come
from the environment so they never have to be written into a file.
"""

from __future__ import annotations

import difflib
import math
import os
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from datetime import time
from pathlib import Path
from typing import Any, Literal, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

Clock = time  # the field ``SummarySettings.time`` hides the type inside that class
_EIGHT_AM = time(8, 0)
_NOON = time(12, 0)
Units = Literal["mi", "km"]
CounterFormat = Literal["csc", "u16le", "u32le"]

DEFAULT_CONFIG_NAME = "hamsterbot.toml"
TELEGRAM_TOKEN_ENV = "HAMSTERBOT_TELEGRAM_TOKEN"
DISCORD_TOKEN_ENV = "HAMSTERBOT_DISCORD_TOKEN"
MQTT_PASSWORD_ENV = "HAMSTERBOT_MQTT_PASSWORD"
MQTT_SENSOR = "mqtt:"
MQTT_COUNTER_SENSOR = "mqtt-counter:"
MIN_DIAMETER_CM = 8.0
MAX_DIAMETER_CM = 60.0


_Platform = TypeVar("_Platform", "TelegramConfig", "DiscordConfig")


class ConfigError(Exception):
    """A configuration mistake; ``str()`` is one line naming the file and the key."""


@dataclass(frozen=True, slots=True)
class BotSettings:
    database: Path = Path("hamsterbot.db")
    timezone: str = "UTC"
    units: Units = "mi"
    flush_seconds: float = 60.0
    log_level: str = "INFO"


@dataclass(frozen=True, slots=True)
class SummarySettings:
    time: Clock = _EIGHT_AM
    enabled: bool = True
    catch_up_until: Clock = _NOON


@dataclass(frozen=True, slots=True)
class HamsterConfig:
    name: str
    circumference_m: float
    # None: no sensor; "simulated"; "auto"; a BLE address; "mqtt:HOME/WHEEL" (a gateway's wheel);
    # "mqtt-counter:TOPIC" (a DIY board publishing its cumulative count)
    sensor: str | None = None
    counter_bits: int = 32
    max_speed_kmh: float = 10.0
    reverse_tolerance: int = 16
    characteristic: str | None = None
    counter_format: CounterFormat = "csc"
    value: str | None = None  # mqtt-counter: the dotted path of the count in a JSON payload
    # The chats that see this hamster ("telegram:-1001234", "discord:5678"); None: every chat.
    chats: tuple[str, ...] | None = None

    @property
    def home(self) -> str | None:
        """The home a gateway publishes this wheel from (``mqtt:HOME/WHEEL``); None otherwise."""
        if self.sensor is not None and self.sensor.startswith(MQTT_SENSOR):
            return self.sensor.removeprefix(MQTT_SENSOR).partition("/")[0]
        return None

    def seen_in(self, platform: str, chat_key: str) -> bool:
        """Whether the chat ``platform:chat_key`` sees this hamster."""
        return self.chats is None or f"{platform}:{chat_key}" in self.chats

    @property
    def mqtt_source(self) -> str | None:
        """``"mqtt"`` or ``"mqtt-counter"`` when the wheel is fed from the broker, else None."""
        if self.sensor is None:
            return None
        if self.sensor.startswith(MQTT_SENSOR):
            return "mqtt"
        if self.sensor.startswith(MQTT_COUNTER_SENSOR):
            return "mqtt-counter"
        return None


@dataclass(frozen=True, slots=True)
class MqttSettings:
    """``[mqtt]``: the broker every home's gateway and the bot meet at."""

    url: str | None = None  # None: no broker configured
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    client_id: str | None = None
    topic_prefix: str = "hamsterbot"
    homeassistant: bool = False

    @property
    def host(self) -> str:
        return _split_url(self.url or "")[1]

    @property
    def port(self) -> int:
        return _split_url(self.url or "")[2]

    @property
    def tls(self) -> bool:
        return _split_url(self.url or "")[0] == "mqtts"


@dataclass(frozen=True, slots=True)
class GatewaySettings:
    """``[gateway]``: this cage's home, the middle part of its topics."""

    home: str | None = None


@dataclass(frozen=True, slots=True)
class BleSettings:
    scan_timeout: float = 10.0
    connect_timeout: float = 20.0
    backoff_initial: float = 1.0
    backoff_max: float = 60.0
    watchdog_seconds: float = 300.0


@dataclass(frozen=True, slots=True)
class TelegramConfig:
    token: str | None = field(default=None, repr=False)
    base_url: str | None = None


@dataclass(frozen=True, slots=True)
class DiscordConfig:
    token: str | None = field(default=None, repr=False)
    guild_ids: tuple[int, ...] = ()
    api_base_url: str | None = None
    gateway_url: str | None = None


@dataclass(frozen=True, slots=True)
class SimulationSettings:
    seed: int = 7
    speedup: float = 1.0


@dataclass(frozen=True, slots=True)
class WebSettings:
    """The public page: where it listens, the address people use, its units (None: the bot's)."""

    host: str = "127.0.0.1"
    port: int = 8080
    public_url: str | None = None
    units: Units | None = None


@dataclass(frozen=True, slots=True)
class Config:
    bot: BotSettings
    summary: SummarySettings
    hamsters: tuple[HamsterConfig, ...]
    telegram: TelegramConfig
    discord: DiscordConfig
    ble: BleSettings = BleSettings()
    simulation: SimulationSettings = SimulationSettings()
    web: WebSettings | None = None  # None: no [web] table, no web server (``run``)
    mqtt: MqttSettings = MqttSettings()
    gateway: GatewaySettings = GatewaySettings()
    source: Path | None = None  # None: the embedded defaults

    def hamster(self, name: str) -> HamsterConfig | None:
        for hamster in self.hamsters:
            if hamster.name.casefold() == name.casefold():
                return hamster
        return None


def default_hamster() -> HamsterConfig:
    return HamsterConfig(name="Ursula", circumference_m=math.pi * 0.20, sensor="simulated")


def system_timezone() -> str:
    """The IANA name of the machine's zone, or UTC when it cannot be told."""
    candidates = [os.environ.get("TZ", "").lstrip(":")]
    try:
        candidates.append(Path("/etc/timezone").read_text(encoding="utf-8").strip())
    except OSError:
        pass
    try:
        target = os.readlink("/etc/localtime")
        if "zoneinfo/" in target:
            candidates.append(target.split("zoneinfo/", 1)[1])
    except OSError:
        pass
    for name in candidates:
        if name and _is_zone(name):
            return name
    return "UTC"


def _is_zone(name: str) -> bool:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def defaults(database: Path | None = None) -> Config:
    """The embedded defaults: one simulated hamster, a local SQLite file, the system timezone."""
    return Config(
        bot=BotSettings(database=database or Path("hamsterbot.db"), timezone=system_timezone()),
        summary=SummarySettings(),
        hamsters=(default_hamster(),),
        telegram=_with_env_token(TelegramConfig(), TELEGRAM_TOKEN_ENV),
        discord=_with_env_token(DiscordConfig(), DISCORD_TOKEN_ENV),
        mqtt=_with_env_password(MqttSettings()),
    )


def load(path: Path | None = None, *, database: Path | None = None) -> Config:
    """Load ``path``; without it ``hamsterbot.toml`` in the working directory, else the embedded defaults."""
    if path is None:
        candidate = Path(DEFAULT_CONFIG_NAME)
        if not candidate.is_file():
            return defaults(database)
        path = candidate
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read it ({err.strerror})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: is not UTF-8 text") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML ({err})") from None
    config = parse(raw, source=path)
    if database is not None:
        config = _replace_database(config, database)
    return config


def _replace_database(config: Config, database: Path) -> Config:
    return replace(config, bot=replace(config.bot, database=database))


# --- validation -------------------------------------------------------------------------------

Check = Callable[[Any, str], Any]  # (value, "where") -> converted value, or raises ConfigError


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _fail(where, f"expected a string, got {_describe(value)}")
    return value


def _nonempty_string(value: Any, where: str) -> str:
    text = _string(value, where).strip()
    if not text:
        raise _fail(where, "must not be empty")
    return text


def _boolean(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(where, f"expected true or false, got {_describe(value)}")
    return value


def _integer(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(where, f"expected a whole number, got {_describe(value)}")
    return value


def _number(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _fail(where, f"expected a number, got {_describe(value)}")
    if not math.isfinite(value):
        raise _fail(where, "must be a finite number")
    return float(value)


def _positive(check: Check) -> Check:
    def positive(value: Any, where: str) -> Any:
        number = check(value, where)
        if number <= 0:
            raise _fail(where, f"must be greater than zero, got {value}")
        return number

    return positive


def _between(low: float, high: float, check: Check = _number) -> Check:
    def between(value: Any, where: str) -> Any:
        number = check(value, where)
        if not low <= number <= high:
            raise _fail(where, f"must be between {low:g} and {high:g}, got {value}")
        return number

    return between


def _one_of(*choices: str) -> Check:
    def one_of(value: Any, where: str) -> str:
        text = _string(value, where)
        if text not in choices:
            options = " or ".join(f'"{c}"' for c in choices)
            raise _fail(where, f'must be {options}, got "{text}"')
        return text

    return one_of


def _timezone(value: Any, where: str) -> str:
    name = _nonempty_string(value, where)
    if not _is_zone(name):
        raise _fail(where, f'unknown timezone "{name}" (use an IANA name such as "Europe/London")')
    return name


def _clock(value: Any, where: str) -> time:
    if isinstance(value, time):
        return value.replace(second=0, microsecond=0)
    text = _string(value, where).strip()
    hours, sep, minutes = text.partition(":")
    if (
        sep
        and hours.isascii()
        and hours.isdigit()
        and minutes.isascii()
        and minutes.isdigit()
        and len(minutes) == 2
        and int(hours) < 24
        and int(minutes) < 60
    ):
        return time(int(hours), int(minutes))
    raise _fail(where, f'expected a time of day "HH:MM", got "{text}"')


def _log_level(value: Any, where: str) -> str:
    levels = ("DEBUG", "INFO", "WARNING", "ERROR")
    text = _string(value, where).upper()
    if text not in levels:
        raise _fail(where, f"must be one of {', '.join(levels)}, got {value!r}")
    return text


def _path(value: Any, where: str) -> Path:
    return Path(_nonempty_string(value, where)).expanduser()


def _url(value: Any, where: str) -> str:
    text = _nonempty_string(value, where)
    if not text.startswith(("http://", "https://", "ws://", "wss://")):
        raise _fail(where, f'expected a URL starting with http:// or https://, got "{text}"')
    return text.rstrip("/") if not text.endswith("/bot") else text


def _listen(value: Any, where: str) -> tuple[str, int]:
    text = _nonempty_string(value, where)
    host, sep, port = text.rpartition(":")
    host = host.strip("[]")
    if sep and host and port.isascii() and port.isdigit() and int(port) < 65536:
        return host, int(port)
    raise _fail(where, f'expected "HOST:PORT" such as "127.0.0.1:8080", got "{text}"')


def _http_url(value: Any, where: str) -> str:
    text = _url(value, where)
    if not text.startswith(("http://", "https://")):
        raise _fail(where, f'expected a URL starting with http:// or https://, got "{text}"')
    return text


def _guild_ids(value: Any, where: str) -> tuple[int, ...]:
    if not isinstance(value, list):
        raise _fail(where, f"expected a list of guild ids, got {_describe(value)}")
    ids = []
    for index, item in enumerate(value):
        if isinstance(item, str) and item.isascii() and item.isdigit():
            item = int(item)
        ids.append(_positive(_integer)(item, f"{where}[{index}]"))
    return tuple(ids)


def _sensor(value: Any, where: str) -> str:
    text = _nonempty_string(value, where)
    if text.lower() in ("simulated", "auto"):
        return text.lower()
    if text.startswith(MQTT_SENSOR):
        home, sep, wheel = text.removeprefix(MQTT_SENSOR).partition("/")
        if not sep or "/" in wheel:
            raise _fail(where, f'expected "mqtt:HOME/WHEEL" (one slash), got "{text}"')
        _topic_level(home, f"{where} (home)")
        _topic_level(wheel, f"{where} (wheel)")
        return text
    if text.startswith(MQTT_COUNTER_SENSOR):
        _topic(text.removeprefix(MQTT_COUNTER_SENSOR), where)
        return text
    parts = text.split(":")
    if len(parts) == 6 and all(len(p) == 2 and _is_hex(p) for p in parts):
        return text.upper()
    # macOS reports CoreBluetooth UUIDs instead of addresses.
    if len(text) == 36 and _is_hex(text.replace("-", "")):
        return text.upper()
    raise _fail(
        where,
        f'expected "simulated", "auto", a Bluetooth address like "C4:7C:8D:6A:12:34", '
        f'"mqtt:HOME/WHEEL" or "mqtt-counter:TOPIC", got "{text}"',
    )


def _topic_level(value: Any, where: str) -> str:
    """One level of an MQTT topic: a home or a wheel name."""
    text = _nonempty_string(value, where)
    bad = [c for c in "/+#" if c in text]
    if bad or "\0" in text:
        shown = "".join(bad) or "NUL"
        raise _fail(where, f'must not contain "{shown}" (MQTT topic separators), got "{text}"')
    return text


def _topic(value: Any, where: str) -> str:
    """A whole MQTT topic we publish or subscribe to exactly (no wildcards)."""
    text = _nonempty_string(value, where)
    if "+" in text or "#" in text or "\0" in text or text.startswith("/") or text.endswith("/"):
        raise _fail(
            where, f'expected an MQTT topic without wildcards like "home/wheel", got "{text}"'
        )
    return text


CHAT_PLATFORMS = ("telegram", "discord", "console")


def _chat_list(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list):
        raise _fail(where, f'expected a list like ["telegram:-1001234"], got {_describe(value)}')
    chats = []
    for index, item in enumerate(value):
        text = _nonempty_string(item, f"{where}[{index}]")
        platform, sep, key = text.partition(":")
        if not sep or platform not in CHAT_PLATFORMS or not key.strip():
            raise _fail(
                f"{where}[{index}]",
                f'expected PLATFORM:ID like "telegram:-1001234" or "discord:5678" (platforms: '
                f'{", ".join(CHAT_PLATFORMS)}), got "{text}"',
            )
        chats.append(f"{platform}:{key.strip()}")
    return tuple(chats)


def _dotted_path(value: Any, where: str) -> str:
    text = _nonempty_string(value, where)
    if any(not part.strip() for part in text.split(".")):
        raise _fail(where, f'expected a dotted path like "COUNTER.C1", got "{text}"')
    return text


_MQTT_SCHEMES = {"mqtt": 1883, "mqtts": 8883}


def _split_url(text: str) -> tuple[str, str, int]:
    """``mqtt[s]://host[:port]`` -> (scheme, host, port); ValueError with a reason otherwise."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in _MQTT_SCHEMES:
        raise ValueError("expected a URL starting with mqtt:// or mqtts://")
    rest = rest.rstrip("/")
    if "@" in rest:
        raise ValueError(
            "put the user name and password in [mqtt] username and password, not the URL"
        )
    if "/" in rest or "?" in rest:
        raise ValueError("expected mqtt://HOST:PORT with no path")
    host, port = rest, _MQTT_SCHEMES[scheme]
    if rest.startswith("["):  # an IPv6 literal
        end = rest.find("]")
        host, tail = rest[1:end], rest[end + 1 :]
        if end < 0 or (tail and not tail.startswith(":")):
            raise ValueError("expected mqtt://[IPV6]:PORT")
        rest_port = tail[1:] if tail else ""
    else:
        host, _, rest_port = rest.partition(":")
    if rest_port:
        if not (rest_port.isascii() and rest_port.isdigit() and 0 < int(rest_port) < 65536):
            raise ValueError(f'"{rest_port}" is not a port number')
        port = int(rest_port)
    if not host:
        raise ValueError("the URL names no host")
    return scheme, host, port


def _mqtt_url(value: Any, where: str) -> str:
    text = _nonempty_string(value, where)
    try:
        _split_url(text)
    except ValueError as err:
        raise _fail(where, f'{err}, got "{text}"') from None
    return text


def _uuid(value: Any, where: str) -> str:
    text = _nonempty_string(value, where).lower()
    if len(text) == 4 and _is_hex(text):
        return f"0000{text}-0000-1000-8000-00805f9b34fb"
    if len(text) == 36 and _is_hex(text.replace("-", "")):
        return text
    raise _fail(
        where, f'expected a characteristic UUID such as "2a5b" or a full 128-bit UUID, got "{text}"'
    )


def _is_hex(text: str) -> bool:
    return bool(text) and all(c in "0123456789abcdefABCDEF" for c in text)


def _describe(value: Any) -> str:
    names = {
        str: "a string",
        bool: "true/false",
        int: "a number",
        float: "a number",
        list: "a list",
    }
    return names.get(type(value), "a table" if isinstance(value, dict) else type(value).__name__)


@dataclass(frozen=True, slots=True)
class _Key:
    check: Check
    attr: str | None = None  # dataclass field name when it differs from the key


_SCHEMA: dict[str, dict[str, _Key]] = {
    "bot": {
        "database": _Key(_path),
        "timezone": _Key(_timezone),
        "units": _Key(_one_of("mi", "km")),
        "flush_seconds": _Key(_between(1, 3600)),
        "log_level": _Key(_log_level),
    },
    "summary": {
        "time": _Key(_clock),
        "enabled": _Key(_boolean),
        "catch_up_until": _Key(_clock),
    },
    "hamsters": {
        "name": _Key(_nonempty_string),
        "wheel_diameter_cm": _Key(_between(MIN_DIAMETER_CM, MAX_DIAMETER_CM)),
        "wheel_circumference_m": _Key(
            _between(math.pi * MIN_DIAMETER_CM / 100, math.pi * MAX_DIAMETER_CM / 100)
        ),
        "sensor": _Key(_sensor),
        "counter_bits": _Key(_between(8, 32, _integer)),
        "max_speed_kmh": _Key(_between(1, 50)),
        "reverse_tolerance": _Key(_between(0, 1000, _integer)),
        "characteristic": _Key(_uuid),
        "counter_format": _Key(_one_of("csc", "u16le", "u32le")),
        "value": _Key(_dotted_path),
        "chats": _Key(_chat_list),
    },
    "ble": {
        "scan_timeout": _Key(_between(1, 600)),
        "connect_timeout": _Key(_between(1, 600)),
        "backoff_initial": _Key(_between(0.01, 3600)),
        "backoff_max": _Key(_between(0.01, 86400)),
        "watchdog_seconds": _Key(_between(1, 86400)),
    },
    "telegram": {"token": _Key(_nonempty_string), "base_url": _Key(_url)},
    "discord": {
        "token": _Key(_nonempty_string),
        "guild_ids": _Key(_guild_ids),
        "api_base_url": _Key(_url),
        "gateway_url": _Key(_url),
    },
    "simulation": {"seed": _Key(_integer), "speedup": _Key(_between(0.001, 100000))},
    "web": {
        "listen": _Key(_listen),
        "public_url": _Key(_http_url),
        "units": _Key(_one_of("mi", "km")),
    },
    "mqtt": {
        "url": _Key(_mqtt_url),
        "username": _Key(_nonempty_string),
        "password": _Key(_string),
        "client_id": _Key(_nonempty_string),
        "topic_prefix": _Key(_topic),
        "homeassistant": _Key(_boolean),
    },
    "gateway": {"home": _Key(_topic_level)},
}


def _check_keys(table: Mapping[str, Any], allowed: Mapping[str, Any], where: str) -> None:
    for key in table:
        if key not in allowed:
            hint = difflib.get_close_matches(key, list(allowed), n=1)
            suggestion = f' (did you mean "{hint[0]}"?)' if hint else ""
            known = ", ".join(allowed)
            raise ConfigError(f'{where}: unknown key "{key}"{suggestion}; known keys: {known}')


def _section(raw: Mapping[str, Any], name: str, origin: str) -> dict[str, Any]:
    table = raw.get(name, {})
    if not isinstance(table, dict):
        raise ConfigError(f"{origin}: [{name}] must be a table")
    _check_keys(table, _SCHEMA[name], f"{origin}: [{name}]")
    return {
        key: _SCHEMA[name][key].check(value, f"{origin}: [{name}] {key}")
        for key, value in table.items()
    }


def parse(raw: Mapping[str, Any], *, source: Path | None = None) -> Config:
    """Validate a decoded TOML document. Raises ConfigError naming the file and key."""
    origin = str(source) if source else "config"
    _check_keys(raw, _SCHEMA, origin)
    bot = _section(raw, "bot", origin)
    bot.setdefault("timezone", system_timezone())
    summary = _section(raw, "summary", origin)
    hamsters = _hamsters(raw.get("hamsters"), origin)
    telegram = _with_env_token(
        TelegramConfig(**_section(raw, "telegram", origin)), TELEGRAM_TOKEN_ENV
    )
    discord = _with_env_token(DiscordConfig(**_section(raw, "discord", origin)), DISCORD_TOKEN_ENV)
    ble = BleSettings(**_section(raw, "ble", origin))
    if ble.backoff_initial > ble.backoff_max:
        raise ConfigError(f"{origin}: [ble] backoff_initial must not exceed backoff_max")
    mqtt = _with_env_password(MqttSettings(**_section(raw, "mqtt", origin)))
    for hamster in hamsters:
        if hamster.mqtt_source and mqtt.url is None:
            raise ConfigError(
                f'{origin}: [[hamsters]] "{hamster.name}" sensor: "{hamster.sensor}" needs '
                '[mqtt] url = "mqtt://HOST:PORT"'
            )
    return Config(
        bot=BotSettings(**bot),
        summary=SummarySettings(**summary),
        hamsters=hamsters,
        telegram=telegram,
        discord=discord,
        ble=ble,
        simulation=SimulationSettings(**_section(raw, "simulation", origin)),
        web=_web(raw, origin),
        mqtt=mqtt,
        gateway=GatewaySettings(**_section(raw, "gateway", origin)),
        source=source,
    )


def _web(raw: Mapping[str, Any], origin: str) -> WebSettings | None:
    if "web" not in raw:
        return None
    values = _section(raw, "web", origin)
    host, port = values.pop("listen", ("127.0.0.1", 8080))
    return WebSettings(host=host, port=port, **values)


def _hamsters(raw: Any, origin: str) -> tuple[HamsterConfig, ...]:
    if raw is None:
        # A config file without hamsters has none: the embedded simulated Ursula must never count
        # into a real database (she is the default only when no config file is used at all).
        return ()
    if not isinstance(raw, list) or not raw:
        raise ConfigError(f"{origin}: [[hamsters]] must be one or more [[hamsters]] tables")
    hamsters: list[HamsterConfig] = []
    seen: set[str] = set()
    for index, table in enumerate(raw):
        where = f"{origin}: [[hamsters]] #{index + 1}"
        if not isinstance(table, dict):
            raise ConfigError(f"{where}: must be a table")
        _check_keys(table, _SCHEMA["hamsters"], where)
        values = {
            key: _SCHEMA["hamsters"][key].check(v, f"{where} {key}") for key, v in table.items()
        }
        if "name" not in values:
            raise ConfigError(f'{where}: missing key "name"')
        name = values.pop("name")
        where = f'{origin}: [[hamsters]] "{name}"'
        if name.casefold() in seen:
            raise ConfigError(f'{where}: duplicate hamster name "{name}"')
        seen.add(name.casefold())
        diameter = values.pop("wheel_diameter_cm", None)
        circumference = values.pop("wheel_circumference_m", None)
        if (diameter is None) == (circumference is None):
            raise ConfigError(
                f"{where}: give exactly one of wheel_diameter_cm or wheel_circumference_m"
            )
        if circumference is None:
            circumference = math.pi * diameter / 100
        fmt = values.get("counter_format", "csc")
        if "counter_bits" not in values and fmt == "u16le":
            values["counter_bits"] = 16
        default = {f.name: f.default for f in fields(HamsterConfig)}
        bits = values.get("counter_bits", default["counter_bits"])
        tolerance = values.get("reverse_tolerance", default["reverse_tolerance"])
        if tolerance >= 2**bits // 2:
            # A drop of half the counter's range or more cannot be told from a forward run.
            raise ConfigError(
                f"{where} reverse_tolerance: must be below {2**bits // 2} "
                f"(half the range of a {bits}-bit counter), got {tolerance}"
            )
        sensor = values.get("sensor") or ""
        if sensor.startswith(MQTT_COUNTER_SENSOR):
            # The count arrives as a number and travels the pipeline as a bare 32-bit counter;
            # counter_bits (default 32) says how wide the board's own counter is.
            if fmt != "csc" or "characteristic" in values:
                key = "counter_format" if fmt != "csc" else "characteristic"
                raise ConfigError(f"{where} {key}: does not apply to an mqtt-counter sensor")
            values["counter_format"] = "u32le"
        elif "value" in values:
            raise ConfigError(f'{where} value: only applies to sensor = "mqtt-counter:TOPIC"')
        hamsters.append(HamsterConfig(name=name, circumference_m=circumference, **values))
    return tuple(hamsters)


def _with_env_password(settings: MqttSettings) -> MqttSettings:
    """HAMSTERBOT_MQTT_PASSWORD wins over [mqtt] password, as tokens do."""
    password = os.environ.get(MQTT_PASSWORD_ENV, "")
    if password:
        return replace(settings, password=password)
    return settings


def _with_env_token(settings: _Platform, env_name: str) -> _Platform:
    """The environment wins over the file, so a token never has to be written down."""
    token = os.environ.get(env_name, "").strip()
    if token:
        return replace(settings, token=token)
    return settings
