"""The shape of operator/certmint: short functions, short modules, no import cycle.

House rules (docs/design.md, issue #17): no function or method longer than 60 lines,
decorators included; no module longer than 500 lines; no import cycle among certmint's
modules. Today's offenders are listed below; an entry that no longer offends fails the
test as well, so that the lists can only shrink. bench/ and harness/ keep the same length
limits, with no exceptions.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator, Mapping
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ROOT / "operator"
PACKAGE = "certmint"
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 500
#: The name of a whole module in an offender's key (``path:<module>``).
MODULE = "<module>"

# Oversized functions and modules allowed (none since issue #17 split the last ones):
# `path:<module>` for a module, `path:Qualified.name` for a function (paths relative to
# operator/certmint). An entry that no longer offends fails the test.
KNOWN_OVERSIZED: frozenset[str] = frozenset()

# Import cycles allowed (none since issue #17 split the reconcilers), each as the modules along it,
# starting from the smallest name (without the `certmint.` prefix). Imports under
# `if TYPE_CHECKING:` count: they tie the modules together all the same.
KNOWN_CYCLES: frozenset[tuple[str, ...]] = frozenset()
#: Enumerating cycles stops here: past this many the graph needs a human, not a list.
MAX_CYCLES = 200


# Measuring -----------------------------------------------------------------------------
def function_lengths(tree: ast.Module) -> Iterator[tuple[str, int]]:
    """(qualified name, lines from the first decorator to the last line) of every function.

    Methods are ``Class.method``; nested functions ``outer.inner`` (and count in their
    outer function's lines too).
    """

    def walk(node: ast.AST, prefix: str) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                first = min([child.lineno, *(d.lineno for d in child.decorator_list)])
                assert child.end_lineno is not None
                yield prefix + child.name, child.end_lineno - first + 1
                yield from walk(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                yield from walk(child, f"{prefix}{child.name}.")
            else:
                yield from walk(child, prefix)

    return walk(tree, "")


def oversized_in(source: str, path: str) -> dict[str, int]:
    """The offenders of one module's source, ``path:name`` -> lines."""
    found: dict[str, int] = {}
    lines = len(source.splitlines())
    if lines > MAX_MODULE_LINES:
        found[f"{path}:{MODULE}"] = lines
    for name, length in function_lengths(ast.parse(source)):
        if length > MAX_FUNCTION_LINES:
            found[f"{path}:{name}"] = length
    return found


def oversized(package: Path) -> dict[str, int]:
    """Every offender under ``package``, keyed by path relative to it."""
    found: dict[str, int] = {}
    for file in sorted(package.rglob("*.py")):
        found |= oversized_in(file.read_text(), file.relative_to(package).as_posix())
    return found


def cycles(imports: Mapping[str, set[str]], limit: int = MAX_CYCLES) -> set[tuple[str, ...]]:
    """The elementary cycles of an import graph, each starting from its smallest module.

    Args:
        imports: Module -> the modules it imports directly.
        limit: Stop after this many.

    Returns:
        Each cycle once: the modules along it, ``a -> b -> ... -> a`` as ``(a, b, ...)``.
    """
    found: set[tuple[str, ...]] = set()
    for start in sorted(imports):
        paths = [[start]]
        while paths and len(found) < limit:
            path = paths.pop()
            for imported in sorted(imports.get(path[-1], ())):
                if imported == start:
                    found.add(tuple(path))
                elif imported > start and imported not in path:
                    paths.append([*path, imported])
    return found


def certmint_cycles() -> set[tuple[str, ...]]:
    """The import cycles among certmint's modules, names without ``certmint.``."""
    graph = grimp.build_graph(PACKAGE, cache_dir=None)
    prefix = f"{PACKAGE}."
    imports = {
        module.removeprefix(prefix): {
            imported.removeprefix(prefix)
            for imported in graph.find_modules_directly_imported_by(module)
            if imported.startswith(prefix) and imported != module
        }
        for module in graph.modules
        if module.startswith(prefix)
    }
    return cycles(imports)


def _listing(entries: Mapping[str, int], directory: str = "operator/certmint") -> str:
    return "\n".join(f"  {directory}/{name}:{lines}" for name, lines in entries.items())


# The measures ---------------------------------------------------------------------------
def _function(name: str, body_lines: int, decorators: int = 0, indent: str = "") -> str:
    head = [f"{indent}@decorator{i}" for i in range(decorators)] + [f"{indent}def {name}():"]
    return "\n".join(head + [f"{indent}    x = {i}" for i in range(body_lines)]) + "\n"


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        pytest.param(_function("f", 59), {}, id="a function of 60 lines is within the limit"),
        pytest.param(_function("f", 60), {"m.py:f": 61}, id="a function of 61 lines is oversized"),
        pytest.param(
            _function("f", 57, decorators=3),
            {"m.py:f": 61},
            id="the lines count from the first decorator",
        ),
        pytest.param(
            "class C:\n" + _function("method", 60, indent="    "),
            {"m.py:C.method": 61},
            id="a method is named by its class",
        ),
        pytest.param(
            "async def outer():\n" + _function("inner", 60, indent="    "),
            {"m.py:outer": 62, "m.py:outer.inner": 61},
            id="a nested function counts on its own and in its outer function",
        ),
        pytest.param(
            "\n".join(f"x{i} = {i}" for i in range(501)) + "\n",
            {"m.py:<module>": 501},
            id="a module of 501 lines is oversized",
        ),
        pytest.param(
            "\n".join(f"x{i} = {i}" for i in range(500)) + "\n",
            {},
            id="a module of 500 lines is within the limit",
        ),
    ],
)
def test_oversized_in(source: str, expected: dict[str, int]) -> None:
    assert oversized_in(source, "m.py") == expected


@pytest.mark.parametrize(
    ("imports", "expected"),
    [
        pytest.param({"a": {"b"}, "b": {"c"}, "c": set()}, set(), id="a chain has no cycle"),
        pytest.param({"b": {"a"}, "a": {"b"}}, {("a", "b")}, id="a two-module cycle, once"),
        pytest.param(
            {"a": {"b"}, "b": {"c", "a"}, "c": {"a"}},
            {("a", "b"), ("a", "b", "c")},
            id="two cycles through one module are both listed",
        ),
        pytest.param(
            {"c": {"b"}, "b": {"a"}, "a": {"c"}},
            {("a", "c", "b")},
            id="a cycle starts from its smallest module and follows the imports",
        ),
    ],
)
def test_cycles(imports: dict[str, set[str]], expected: set[tuple[str, ...]]) -> None:
    assert cycles(imports) == expected


# The package -----------------------------------------------------------------------------
def test_no_function_or_module_is_oversized() -> None:
    found = oversized(SOURCES / PACKAGE)
    new = {name: lines for name, lines in found.items() if name not in KNOWN_OVERSIZED}
    assert not new, (
        f"longer than {MAX_FUNCTION_LINES} lines (functions) or {MAX_MODULE_LINES} lines "
        f"(modules), as file:function:lines:\n{_listing(new)}"
    )


@pytest.mark.parametrize("directory", ["bench", "harness"])
def test_the_benchmarks_and_the_harness_keep_the_same_limits(directory: str) -> None:
    found = oversized(ROOT / directory)
    assert not found, f"oversized, as file:function:lines:\n{_listing(found, directory)}"


def test_every_known_oversized_entry_still_is() -> None:
    stale = sorted(KNOWN_OVERSIZED - oversized(SOURCES / PACKAGE).keys())
    assert not stale, f"no longer oversized: remove from KNOWN_OVERSIZED: {stale}"


def test_no_import_cycle() -> None:
    new = sorted(certmint_cycles() - KNOWN_CYCLES)
    assert not new, "import cycles:\n" + "\n".join(
        "  " + " -> ".join((*cycle, cycle[0])) for cycle in new
    )


def test_every_known_cycle_still_exists() -> None:
    stale = sorted(KNOWN_CYCLES - certmint_cycles())
    assert not stale, f"no longer a cycle: remove from KNOWN_CYCLES: {stale}"
