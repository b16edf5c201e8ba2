"""The pure cores stay pure: consensus/, contracts_vm/ and node/ledger/ import no I/O,
no clock and no source of nondeterminism (shared/design/architecture.md)."""

import ast
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent
PURE_CORES = ("consensus", "contracts_vm", "node/ledger")
FORBIDDEN = frozenset(
    {
        "trio",
        "plyvel",
        "libp2p",
        "socket",
        "time",
        "random",
        "os",
        "threading",
        "asyncio",
        "subprocess",
        "datetime",
        "secrets",
        "uuid",
        "multiprocessing",
        "select",
        "selectors",
        "signal",
        "shutil",
        "tempfile",
        "io",
        "pathlib",
    }
)


def imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and getattr(node.func, "id", None) == "__import__":
            found.append((node.lineno, "__import__"))
    return found


def core_files() -> list[pathlib.Path]:
    return sorted(p for core in PURE_CORES for p in (ROOT / core).rglob("*.py"))


def test_cores_exist() -> None:
    assert core_files(), "pure cores must contain code"


@pytest.mark.parametrize("path", core_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_pure_core_imports_nothing_impure(path: pathlib.Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [
        f"{path.relative_to(ROOT)}:{line} imports {mod}"
        for line, mod in imported_modules(tree)
        if mod == "__import__" or mod.split(".")[0] in FORBIDDEN
    ]
    assert not bad, "\n".join(bad)


def test_checker_catches_a_forbidden_import() -> None:
    tree = ast.parse("import os.path\nfrom time import monotonic\nimport msgpack\n")
    mods = [m for _, m in imported_modules(tree) if m.split(".")[0] in FORBIDDEN]
    assert mods == ["os.path", "time"]
