"""The package's layering, enforced: every import statement of every module (top level, inside
functions and under ``TYPE_CHECKING`` alike) is read with ``ast`` and checked against the rules
that ``docs/architecture.md`` draws.

- ``websocket`` (the RFC 6455 core) imports only the standard library minus asyncio, sockets
  and threads, and the ``_abnf`` grammar: it runs anywhere, as sans-I/O code should.
- ``krandog`` and ``compat`` speak ASGI only: the standard library, ``asgi_types``, ``_abnf``.
- ``wsclient`` and ``client`` never import the server side.
- ``pubsub`` (the broker) imports only itself, the standard library and redis-py.
- ``http.request_head`` and ``http.response`` import no I/O module at run time.
- No import cycle anywhere in the package.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "krandog_asgi"
STDLIB = frozenset(sys.stdlib_module_names) | {"__future__"}
# What sans-I/O means: no event loop, no sockets, no threads.
IO_MODULES = frozenset({"asyncio", "socket", "selectors", "ssl", "threading", "uvloop"})
SERVER_SIDE = (
    "krandog_asgi.server",
    "krandog_asgi.http_protocol",
    "krandog_asgi.ws_protocol",
    "krandog_asgi.http",
    "krandog_asgi.process",
    "krandog_asgi.config",
    "krandog_asgi.cli",
    "krandog_asgi.compat",
    "krandog_asgi.krandog",
)


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def all_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


MODULES = all_modules()


def imports_of(name: str) -> Iterator[str]:
    """Every module ``name`` imports (``from a import b`` yields ``a.b`` when that is a module)."""
    path = MODULES[name]
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{anchor}.{base}" if base else anchor
            yield base
            for alias in node.names:
                if f"{base}.{alias.name}" in MODULES:
                    yield f"{base}.{alias.name}"


def internal_imports(name: str) -> set[str]:
    found = set()
    for target in imports_of(name):
        # a.b.c imports a and a.b too, but those are package __init__s: lazily re-exporting
        # facades, not dependencies.
        if target.startswith("krandog_asgi.") and target in MODULES:
            found.add(target)
    return found


def external_roots(name: str) -> set[str]:
    return {t.split(".")[0] for t in imports_of(name) if not t.startswith("krandog_asgi")}


def in_layer(name: str, layer: str) -> bool:
    return name == layer or name.startswith(layer + ".")


def modules_of(*layers: str) -> list[str]:
    return [m for m in MODULES if any(in_layer(m, layer) for layer in layers)]


@pytest.mark.parametrize("name", modules_of("krandog_asgi.websocket"))
def test_websocket_core_is_sans_io(name: str) -> None:
    external = external_roots(name)
    assert external <= STDLIB, f"{name} imports third-party {external - STDLIB}"
    assert not external & IO_MODULES, f"{name} imports I/O modules {external & IO_MODULES}"
    allowed = {"krandog_asgi._abnf"}
    for target in internal_imports(name):
        assert in_layer(target, "krandog_asgi.websocket") or target in allowed, (
            f"{name} imports {target}: the core may import only itself and _abnf"
        )


@pytest.mark.parametrize("name", [*modules_of("krandog_asgi.krandog"), "krandog_asgi.compat"])
def test_krandog_layer_speaks_asgi_only(name: str) -> None:
    external = external_roots(name)
    assert external <= STDLIB, f"{name} imports third-party {external - STDLIB}"
    allowed = {"krandog_asgi._abnf", "krandog_asgi.asgi_types"}
    for target in internal_imports(name):
        assert in_layer(target, "krandog_asgi.krandog") or target in allowed, (
            f"{name} imports {target}: the krandog layer must run under any ASGI server"
        )


@pytest.mark.parametrize("name", [*modules_of("krandog_asgi.wsclient"), "krandog_asgi.client"])
def test_client_never_imports_the_server(name: str) -> None:
    for target in internal_imports(name):
        assert not any(in_layer(target, side) for side in SERVER_SIDE), (
            f"{name} imports the server-side module {target}"
        )


@pytest.mark.parametrize("name", ["krandog_asgi.http.request_head", "krandog_asgi.http.response"])
def test_http_head_rules_and_framing_need_no_event_loop(name: str) -> None:
    """Head rules and response framing are pure: testable without a socket or a loop (the
    writer names ``asyncio.Transport`` only as a type)."""
    path = MODULES[name]
    runtime = ast.parse(path.read_text())
    runtime.body = [n for n in runtime.body if not _is_type_checking_block(n)]
    roots = set()
    for node in ast.walk(runtime):
        if isinstance(node, ast.Import):
            roots |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            roots.add(node.module.split(".")[0])
    assert not roots & IO_MODULES, f"{name} imports I/O modules {roots & IO_MODULES} at run time"


def _is_type_checking_block(node: ast.stmt) -> bool:
    return isinstance(node, ast.If) and ast.unparse(node.test) in {
        "TYPE_CHECKING",
        "typing.TYPE_CHECKING",
    }


@pytest.mark.parametrize("name", modules_of("krandog_asgi.transport"))
def test_transport_glue_serves_both_sides(name: str) -> None:
    """The asyncio glue sits under the server and the client: it imports neither."""
    for target in internal_imports(name):
        assert in_layer(target, "krandog_asgi.transport") or in_layer(
            target, "krandog_asgi.websocket"
        ), f"{name} imports {target}"


@pytest.mark.parametrize("name", modules_of("krandog_asgi.pubsub"))
def test_pubsub_is_its_own_layer(name: str) -> None:
    """The broker imports nothing of the server, HTTP, WebSocket or krandog code: apps under
    any ASGI server can use it, and the server only hands it to them."""
    external = external_roots(name)
    assert external <= STDLIB | {"redis"}, f"{name} imports third-party {external - STDLIB}"
    for target in internal_imports(name):
        assert in_layer(target, "krandog_asgi.pubsub"), f"{name} imports {target}"


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """A cycle of ``graph`` as a path (first == last), or None; iterative DFS."""
    colour: dict[str, int] = {}
    for root in graph:
        if colour.get(root):
            continue
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(sorted(graph[root])))]
        path = [root]
        colour[root] = 1
        while stack:
            node, children = stack[-1]
            child = next(children, None)
            if child is None:
                colour[node] = 2
                stack.pop()
                path.pop()
            elif colour.get(child) == 1:
                return [*path[path.index(child) :], child]
            elif not colour.get(child):
                colour[child] = 1
                path.append(child)
                stack.append((child, iter(sorted(graph.get(child, ())))))
    return None


def test_no_import_cycle() -> None:
    graph = {name: internal_imports(name) for name in MODULES}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_core_and_client_import_without_the_server_at_run_time() -> None:
    """The rules above read the source; this checks what importing really loads."""
    code = (
        "import sys\n"
        "import krandog_asgi.websocket.connection, krandog_asgi.websocket.handshake\n"
        "bad = sorted(m for m in sys.modules if m in ('asyncio', 'uvloop', 'httptools'))\n"
        "assert not bad, bad\n"
        "import krandog_asgi.client\n"
        "server = sorted(m for m in sys.modules if m.startswith(('krandog_asgi.server',"
        " 'krandog_asgi.http_protocol', 'krandog_asgi.ws_protocol', 'krandog_asgi.process')))\n"
        "assert not server, server\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=PACKAGE.parent)
