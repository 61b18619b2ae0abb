"""Asserts and `python -O`: product code checks its invariants with explicit errors (-O strips
assert statements), and the tests' helpers keep theirs (scripts/test runs the suite under -O)."""
import ast
from pathlib import Path

import pytest

from ledger.ledger_support import tr
from support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[1]
PRODUCT_PACKAGES = ("protocol", "switch", "client", "loadtest")


def optimized_away(source: str) -> list[int]:
    """The line of every assert statement and every use of __debug__ in `source`: what behaves
    differently under python -O."""
    return sorted(node.lineno for node in ast.walk(ast.parse(source))
                  if isinstance(node, ast.Assert)
                  or (isinstance(node, ast.Name) and node.id == "__debug__"))


def test_no_module_of_the_product_behaves_differently_under_python_o():
    modules = sorted(path for package in PRODUCT_PACKAGES for path in (ROOT / package).rglob("*.py"))
    assert len(modules) > 100  # the packages were found
    found = [f"{path.relative_to(ROOT)}:{line}" for path in modules
             for line in optimized_away(path.read_text(encoding="utf-8"))]
    assert found == [], "assert statements or __debug__ in product code (python -O strips " \
        "them; check invariants with an explicit raise): " + ", ".join(found)


def test_an_assert_or_debug_branch_is_found_wherever_it_is():
    source = "def f(x):\n    if x:\n        assert x > 1, 'x'\n    return x\nassert f(2)\n"
    assert optimized_away(source) == [3, 5]
    assert optimized_away("if __debug__:\n    print(1)\n") == [1]
    assert optimized_away("x = 1  # assert x\ncheck = 'assert x, __debug__'\n") == []


def test_the_helpers_asserts_run_under_python_o_too():
    """tests/conftest.py has pytest rewrite the helpers' asserts, as it does the tests': under
    `python -O` a plain assert in a helper would vanish, and wait_until would wait for ever."""
    with pytest.raises(AssertionError, match="never: not within"):
        wait_until(lambda: False, "never", timeout_s=0.05)
    with pytest.raises(AssertionError):
        tr("t1", misspelt_field=1)
