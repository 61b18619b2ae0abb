"""The packages' layers, read from their source: the client (and the load generator) never need
the server installed, the sans-IO protocol needs nothing of ours, and the load generator uses
the SDK only through its public API."""

import ast
from pathlib import Path

import pytest

from payswitch import client

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("switch", "client", "protocol", "loadtest")
NAMESPACE = "payswitch."


def imports_of(package: str, namespaced: bool = False) -> list[tuple[str, str, str | None]]:
    """(module file, imported module, imported name or None) for every import in `package`,
    those inside functions too, relative ones made absolute, and our modules named without
    the installed namespace (`payswitch.client.x` is `client.x`) unless `namespaced`."""
    found = []
    for path in sorted((ROOT / package).rglob("*.py")):
        module_parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = module_parts[-1] == "__init__"
        here = module_parts[:-1] if is_package else module_parts
        where = str(path.relative_to(ROOT))
        for node in ast.walk(ast.parse(path.read_text(), filename=where)):
            if isinstance(node, ast.Import):
                found += [(where, alias.name, None) for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = here[:len(here) - node.level + (1 if is_package else 0)]
                    module = ".".join(["payswitch"] + base + ([node.module] if node.module else []))
                else:
                    module = node.module
                found += [(where, module, alias.name) for alias in node.names]
    if namespaced:
        return found
    return [(where, module[len(NAMESPACE):] if module.startswith(NAMESPACE) else module, name)
            for where, module, name in found]


def top(module: str) -> str:
    return module.split(".")[0]


def test_the_import_reader_sees_imports_relative_and_absolute():
    protocol_imports = imports_of("protocol")
    assert ("protocol/batch_files/__init__.py", "protocol.validate", "MAX_BATCH_ITEMS") in \
        protocol_imports
    assert ("client/connection.py", "protocol.replies", "InOrderReplies") in imports_of("client")


@pytest.mark.parametrize("package", ["client", "protocol", "loadtest"])
def test_client_protocol_and_loadtest_never_import_the_switch(package):
    offending = [(where, module) for where, module, _ in imports_of(package)
                 if top(module) == "switch"]
    assert offending == []


def test_protocol_imports_none_of_our_other_packages():
    offending = [(where, module) for where, module, _ in imports_of("protocol")
                 if top(module) in ("client", "switch", "loadtest")]
    assert offending == []


def test_loadtest_uses_only_the_names_the_sdk_exports():
    offending = [(where, module, name) for where, module, name in imports_of("loadtest")
                 if top(module) == "client" and (module != "client" or name not in client.__all__)]
    assert offending == []


@pytest.mark.parametrize("package", PACKAGES)
def test_our_modules_are_imported_through_the_installed_namespace(package):
    """`from payswitch.protocol import ...`, never `from protocol import ...`: the top-level names
    exist only in a checkout, and an application may have its own client.py or protocol.py."""
    offending = [(where, module) for where, module, _ in imports_of(package, namespaced=True)
                 if top(module) in PACKAGES]
    assert offending == []
