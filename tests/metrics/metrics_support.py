"""Reading a switch's metrics listener over real HTTP."""
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

REPO = Path(__file__).resolve().parents[2]
# A metric name in a PromQL expression (ours and the process collector's).
METRIC_NAME = re.compile(r"\b((?:payswitch|process)_[a-z0-9_]+)")


def metrics_port(switch) -> int:
    return json.loads((switch.data_dir / "server.json").read_text())["metrics_port"]


def http_get(port: int, path: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=20) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


def samples(text: str) -> dict[tuple[str, frozenset], float]:
    """Every sample of an exposition: (name, its labels) -> value."""
    return {(sample.name, frozenset(sample.labels.items())): sample.value
            for family in text_string_to_metric_families(text) for sample in family.samples}


def value(scraped: dict, name: str, **labels) -> float:
    return scraped[(name, frozenset(labels.items()))]


def sample_names(scraped: dict) -> set[str]:
    return {name for name, _ in scraped}


def promtool_check(text: str) -> None:
    """`promtool check metrics`, when promtool is installed."""
    if shutil.which("promtool") is None:
        return
    result = subprocess.run(["promtool", "check", "metrics"], input=text, text=True,
                            capture_output=True)
    assert result.returncode == 0, result.stdout + result.stderr


def metric_names_in(expression: str) -> set[str]:
    """The metric names an expression reads, as they appear among the scraped samples."""
    return set(METRIC_NAME.findall(expression))
