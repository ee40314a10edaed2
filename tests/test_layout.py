"""The house rules of the layout: imports run one way and the core's modules stay small.

frontends -> core -> storage -> (nothing of bot); sensors import nothing of bot or storage, so anything may use
them (the counter, backoff, plausible times). Imports inside functions (the lazy ones) count too.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORE_MAX_LINES = 420  # "about 400"


def imported(path: Path) -> set[str]:
    """Every module ``path`` imports, at the top or inside a function."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def sources(package: str) -> list[Path]:
    return sorted((ROOT / package).rglob("*.py"))


def offenders(package: str, allowed: str) -> list[str]:
    """``file: module`` for each import of hamsterbot's own packages that ``allowed`` does not admit."""
    own = ("bot", "sensors", "storage", "benchmarks", "tests")
    found = []
    for path in sources(package):
        for module in sorted(imported(path)):
            top = module.split(".")[0]
            if top in own and not _admitted(module, allowed):
                found.append(f"{path.relative_to(ROOT)}: {module}")
    return found


def _admitted(module: str, allowed: str) -> bool:
    return any(module == a or module.startswith(a + ".") for a in allowed.split())


@pytest.mark.parametrize(
    ("package", "allowed"),
    [
        ("sensors", "sensors"),
        ("storage", "storage sensors"),
        ("bot/core", "bot.core bot.config storage sensors"),
    ],
)
def test_imports_run_one_way(package: str, allowed: str) -> None:
    assert offenders(package, allowed) == []


def test_the_rule_sees_a_lazy_import(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text("def f():\n    from bot.frontends import console\n    import storage.db\n")
    assert imported(module) == {"bot.frontends", "storage.db"}


def test_core_modules_stay_small() -> None:
    sizes = {p.name: len(p.read_text().splitlines()) for p in sources("bot/core")}
    assert {name: n for name, n in sizes.items() if n > CORE_MAX_LINES} == {}


def test_importing_the_wheels_loads_no_chat_layer_and_no_numpy() -> None:
    probe = (
        "import sys, bot.wheels\n"
        "heavy = ('numpy', 'matplotlib', 'bot.core.commands', 'bot.core.summary', 'telegram', 'discord')\n"
        "print(','.join(m for m in heavy if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip() == ""


SQL = re.compile(
    r"\b(SELECT\s.+\sFROM|INSERT\s+INTO|UPDATE\s+\w+\s+SET|DELETE\s+FROM|CREATE\s+TABLE)\b"
)


def sql_strings(path: Path) -> list[str]:
    """String constants in ``path`` that read as SQL statements."""
    tree = ast.parse(path.read_text(), filename=str(path))
    return [
        f"{path}:{node.lineno}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and SQL.search(node.value)
    ]


def test_sql_lives_only_in_storage() -> None:
    found = [
        hit
        for package in ("bot", "sensors", "benchmarks")
        for p in sources(package)
        for hit in sql_strings(p)
    ]
    assert found == []


def test_the_sql_rule_sees_a_statement(tmp_path: Path) -> None:
    module = tmp_path / "m.py"
    module.write_text(
        'Q = "SELECT a FROM t"\nW = "INSERT INTO t VALUES (1)"\nT = "Select a race"\n'
    )
    assert len(sql_strings(module)) == 2
