"""Runs `python -m switch serve` as a real subprocess on a temporary data directory."""
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from support.processes import track

START_TIMEOUT_S = 30.0
# A clean stop may wait out the switch's own shutdown_timeout_s (30 s: replies waiting for the
# log or the stream, events to publish), then save its snapshot and close.
STOP_TIMEOUT_S = 45.0
LOG_LINES_ON_FAILURE = 80


@dataclass
class SwitchProcess:
    data_dir: Path
    extra_args: tuple = ()
    env: dict = field(default_factory=dict)
    process: subprocess.Popen | None = None
    host: str = "127.0.0.1"
    port: int = 0

    @property
    def admin_token(self) -> str:
        return self.env.get("SWITCH_ADMIN_TOKEN") or \
            (self.data_dir / "admin.token").read_text().strip()

    @property
    def log_path(self) -> Path:
        return self.data_dir.parent / f"{self.data_dir.name}-switch.log"

    def start(self) -> "SwitchProcess":
        info_path = self.data_dir / "server.json"
        info_path.unlink(missing_ok=True)
        log_file = open(self.log_path, "ab")
        self.process = track(subprocess.Popen(
            [sys.executable, "-m", "switch", "serve", "--data-dir", str(self.data_dir),
             "--port", "0", "--log-format", "json", *self.extra_args],
            stdout=log_file, stderr=log_file, env={**os.environ, **self.env},
            cwd=Path(__file__).resolve().parents[2]))
        log_file.close()  # the child has its own copy
        info = serving_info(self.process, info_path, START_TIMEOUT_S)
        if info is not None:
            self.port = info["port"]
            return self
        if self.process.poll() is not None:
            raise RuntimeError(f"switch exited with {self.process.returncode}:\n{self.log()}")
        self.kill()  # not left behind to hold the data directory and the CPU
        raise RuntimeError(f"switch did not start in {START_TIMEOUT_S}s:\n{self.log()}")

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def log_events(self, event: str) -> list[dict]:
        """The JSON log lines of one event, oldest first (other output, a traceback, skipped)."""
        found = []
        for line in self.log().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if isinstance(entry, dict) and entry.get("event") == event:
                found.append(entry)
        return found

    def stop(self, signum=signal.SIGTERM, timeout_s: float = STOP_TIMEOUT_S) -> int:
        """Sends `signum` and waits; returns the exit code. A switch still running after
        `timeout_s` is killed (it must not stay behind), and an AssertionError raised with the
        end of its log, which tells where it was."""
        if self.process is None or self.process.poll() is not None:
            return self.process.returncode if self.process else 0
        self.process.send_signal(signum)
        try:
            return self.process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            tail = "\n".join(self.log().splitlines()[-LOG_LINES_ON_FAILURE:])
            raise AssertionError(f"switch still running {timeout_s:g}s after signal {signum}; "
                                 f"its log ends:\n{tail}") from None

    def kill(self) -> None:
        """SIGKILL: the crash that no shutdown code can soften."""
        self.stop(signal.SIGKILL)

    def restart(self) -> "SwitchProcess":
        self.stop()
        return self.start()


def serving_info(process: subprocess.Popen, info_path: Path, timeout_s: float) -> dict | None:
    """What `info_path` (a data directory's server.json) says once the switch `process` has
    written it, naming its pid; None when the process exited first or `timeout_s` passed
    (process.poll() tells which)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and process.poll() is None:
        try:
            info = json.loads(info_path.read_text())
        except (FileNotFoundError, json.JSONDecodeError):
            info = None
        if info is not None and info["pid"] == process.pid:
            return info
        time.sleep(0.02)
    return None


def run_switch_once(data_dir: Path, *extra_args, timeout_s: float = 30.0):
    """Starts a switch expected to refuse to start; returns (exit code, combined output)."""
    result = subprocess.run(
        [sys.executable, "-m", "switch", "serve", "--data-dir", str(data_dir), "--port", "0",
         "--log-format", "json", *extra_args],
        capture_output=True, text=True, timeout=timeout_s,
        cwd=Path(__file__).resolve().parents[2])
    return result.returncode, result.stdout + result.stderr
