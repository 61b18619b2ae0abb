"""The installed names (README, "Installed names"): one import namespace, payswitch.*, that works
beside an application's own client.py and protocol.py, and the three console scripts; from the
checkout, `python -m switch|client|loadtest` still work."""
import importlib
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("switch", "client", "protocol", "loadtest")
SCRIPTS = {"payswitch-server": "switch", "payswitch-cli": "client",
           "payswitch-loadtest": "loadtest"}


def test_the_namespace_works_beside_an_applications_own_modules(tmp_path):
    for name in ("client", "protocol", "switch"):
        (tmp_path / f"{name}.py").write_text(f"MINE = {name!r}\n")
    probe = ("import client, protocol, switch\n"
             "from payswitch.client import Client\n"
             "from payswitch.switch.service import Service\n"
             "print(client.MINE, protocol.MINE, switch.MINE)\n"
             "print(Client.__module__, Service.__module__)\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[:2] == [
        "client protocol switch", "payswitch.client.sync_client payswitch.switch.service"]


def test_every_package_of_the_four_folders_is_under_the_namespace():
    packages = sorted(".".join(path.parent.relative_to(ROOT).parts)
                      for folder in PACKAGES for path in (ROOT / folder).rglob("__init__.py"))
    assert len(packages) > len(PACKAGES)  # subpackages are found too
    for package in packages:
        module = importlib.import_module(f"payswitch.{package}")
        assert Path(module.__file__).resolve() == \
            (ROOT / package.replace(".", "/") / "__init__.py").resolve()


@pytest.mark.parametrize("script", sorted(SCRIPTS))
def test_each_console_script_runs_from_any_directory(tmp_path, script):
    path = Path(sys.executable).with_name(script)
    assert path.exists(), f"{script} is not installed beside {sys.executable}"
    result = subprocess.run([str(path), "--help"], cwd=tmp_path, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: {script} ")


@pytest.mark.parametrize("module", sorted(SCRIPTS.values()))
def test_python_dash_m_still_works_from_the_checkout(module):
    result = subprocess.run([sys.executable, "-m", module, "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"usage: python -m {module} ")
