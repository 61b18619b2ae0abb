"""The metrics listener (--metrics-port): /metrics for Prometheus, /livez and /readyz.

It runs in a thread of its own with a small blocking HTTP server, started before recovery, so
that during a long replay /readyz answers `recovering` with its progress. Nothing here runs on
the event loop: a scrape reads the plain counters the loop and the WAL thread keep (see
switch/metrics.py) and the sizes of the switch's collections, copying each in one step (one
bytecode-level call under the GIL), so no lock is needed and the request path pays nothing.
One request at a time, each bounded by the standard library's limits on the request line and
headers and by `metrics_timeout_s`: this is an operator's port, not a public one.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import structlog

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, ProcessCollector, \
    generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, \
    HistogramMetricFamily

from payswitch.protocol.addresses import display_address
from payswitch.switch.health import Readiness
from payswitch.switch.metrics import Histogram


log = structlog.get_logger("switch.metrics")


class MetricsSetupError(Exception):
    pass


class SwitchCollector:
    """Builds the payswitch_* metrics from the switch's counters at scrape time."""

    def __init__(self, readiness: Readiness, version: str):
        self.readiness = readiness
        self.version = version

    def collect(self):
        readiness = self.readiness
        info = GaugeMetricFamily("payswitch_build_info", "The running version.",
                                 labels=["version"])
        info.add_metric([self.version], 1)
        yield info
        yield GaugeMetricFamily("payswitch_ready", "1 when the node accepts writes (/readyz).",
                                value=0 if readiness.not_ready() else 1)
        yield GaugeMetricFamily("payswitch_recovery_records_replayed",
                                "WAL records replayed by the recovery at this start.",
                                value=readiness.recovery.records_replayed)
        service = readiness.service
        if service is None:
            return
        yield from _request_metrics(service.request_metrics)
        yield from _wal_metrics(service.wal, service.snapshotter)
        yield from _ledger_metrics(service.state)
        if service.replication is not None:
            yield from _replication_metrics(service.replication)
        yield GaugeMetricFamily("payswitch_connections", "Open client connections.",
                                value=len(service.connections))
        yield GaugeMetricFamily("payswitch_requests_in_flight",
                                "Replies executed and held until the WAL makes them durable.",
                                value=service.queued_replies)
        if service.events is not None:
            yield from _events_metrics(service.events)


def _request_metrics(request_metrics):
    answered = CounterMetricFamily("payswitch_requests", "Requests answered, by op and code.",
                                   labels=["op", "code"])
    for (op, code), count in sorted(request_metrics.answered().items()):
        answered.add_metric([op, code], count)
    yield answered
    seconds = HistogramMetricFamily(
        "payswitch_request_duration_seconds", "Time on the event loop from taking a request "
        "to queuing its reply (without the wait for its fsync).", labels=["op"])
    for op, histogram in sorted(request_metrics.seconds().items()):
        seconds.add_metric([op], *_buckets(histogram))
    yield seconds


def _wal_metrics(wal, snapshotter):
    fsync = HistogramMetricFamily("payswitch_wal_fsync_duration_seconds",
                                  "Duration of each WAL fsync.")
    fsync.add_metric([], *_buckets(wal.fsync_seconds))
    yield fsync
    group = HistogramMetricFamily("payswitch_wal_group_requests",
                                  "WAL records written by each write-and-fsync (group commit).")
    group.add_metric([], *_buckets(wal.group_records))
    yield group
    holds = CounterMetricFamily("payswitch_wal_group_holds",
                                "Writes held after a release for the requests it brings "
                                "(--wal-group-wait-s), by outcome: filled, or ran_out of time.",
                                labels=["outcome"])
    holds.add_metric(["filled"], wal.holds - wal.holds_run_out)
    holds.add_metric(["ran_out"], wal.holds_run_out)
    yield holds
    writes = CounterMetricFamily("payswitch_wal_writes",
                                 "WAL write-and-fsyncs, by the thread that made them: the event "
                                 "loop (small ones after a hold that filled or to an idle "
                                 "writer, no connection waiting for a turn) or the WAL thread.",
                                 labels=["thread"])
    writes.add_metric(["event_loop"], wal.writes_in_loop)
    writes.add_metric(["wal"], wal.writes_handed)
    yield writes
    yield CounterMetricFamily("payswitch_wal_written_bytes", "WAL bytes written since start.",
                              value=wal.bytes_since_start)
    yield GaugeMetricFamily("payswitch_wal_durable_seq", "Last WAL record known durable.",
                            value=wal.durable_seq)
    if snapshotter is not None:
        yield GaugeMetricFamily("payswitch_wal_bytes_since_snapshot",
                                "WAL bytes written since the newest snapshot (or the one "
                                "being built) was begun.",
                                value=snapshotter.log_bytes_since_snapshot)
        yield GaugeMetricFamily("payswitch_snapshot_age_seconds",
                                "Seconds since the newest snapshot was written (or since "
                                "start, without one).",
                                value=max(0.0, time.time() - snapshotter.last_snapshot_at_s))


def _replication_metrics(node):
    """Read from the metrics thread: plain attributes the event loop assigns whole."""
    role = GaugeMetricFamily("payswitch_replication_role", "1 for this node's current role.",
                             labels=["role"])
    role.add_metric([node.role], 1)
    yield role
    stats = node.stats()
    yield GaugeMetricFamily("payswitch_replication_lag_records",
                            "On the primary: records not yet acknowledged by the stream; on a "
                            "standby: records in the stream not yet applied.",
                            value=stats["lag_records"])
    yield GaugeMetricFamily("payswitch_replication_replicated_seq",
                            "Last WAL record known to be in the replicated stream.",
                            value=stats["replicated_seq"])
    yield GaugeMetricFamily("payswitch_replication_unreplicated_bytes",
                            "Log bytes appended on the primary, not yet acknowledged by the "
                            "stream.", value=stats["unreplicated_bytes"])
    yield CounterMetricFamily("payswitch_replication_appends",
                              "Stream messages the primary appended since start.",
                              value=node.publisher.published_total)


def _ledger_metrics(state):
    ledger = state.ledger
    yield CounterMetricFamily("payswitch_transfers_committed",
                              "Transfers in the ledger (every kind, replayed history included).",
                              value=len(ledger.book.by_id))
    window = ledger.clearing.window
    yield GaugeMetricFamily("payswitch_window_open_transfers",
                            "Interbank transfers in the open settlement window.",
                            value=0 if window is None else window.transfers)
    created = failed = 0
    for batch in list(state.batches.batches.values()):
        created += batch.created
        failed += batch.failed
    items = CounterMetricFamily("payswitch_batch_items", "Batch items applied, by outcome.",
                                labels=["state"])
    items.add_metric(["created"], created)
    items.add_metric(["failed"], failed)
    yield items


def _events_metrics(events):
    """The committed-event stream (--events): what it published, and what waits."""
    yield CounterMetricFamily("payswitch_events_published",
                              "Events the stream acknowledged since start.",
                              value=events.publisher.published_total)
    yield GaugeMetricFamily("payswitch_events_backlog",
                            "Events derived and not yet acknowledged by the stream.",
                            value=len(events.backlog))
    yield GaugeMetricFamily("payswitch_events_last_published_seq",
                            "The newest event seq the stream holds, as this node knows it.",
                            value=events.backlog.acknowledged_seq)
    yield GaugeMetricFamily("payswitch_events_connected",
                            "1 while connected to NATS.", value=int(events.publisher.connected))


def _buckets(histogram: Histogram) -> tuple[list, float]:
    """Cumulative (le, count) pairs and the sum, as Prometheus wants them."""
    counts = list(histogram.counts)
    cumulative, buckets = 0, []
    for bound, count in zip((*histogram.bounds, float("inf")), counts):
        cumulative += count
        buckets.append(("+Inf" if bound == float("inf") else repr(float(bound)), cumulative))
    return buckets, histogram.sum


class MetricsServer:
    def __init__(self, host: str, port: int, timeout_s: float, readiness: Readiness,
                 version: str):
        registry = CollectorRegistry()
        ProcessCollector(registry=registry)
        registry.register(SwitchCollector(readiness, version))
        handler = type("Handler", (_Handler,), {"registry": registry, "readiness": readiness,
                                                "timeout": timeout_s})
        try:
            self._http = _QuietHTTPServer((host, port), handler)
        except OSError as error:
            raise MetricsSetupError(f"metrics port {display_address(host, port)}: "
                                    f"{error.strerror or error}") \
                from error
        bound_host, self.port = self._http.server_address[:2]
        self.host = str(bound_host)  # an AF_INET(6) server's address is a str
        self._thread = threading.Thread(target=self._http.serve_forever, name="metrics",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._http.shutdown()
        self._http.server_close()


class _QuietHTTPServer(HTTPServer):
    def handle_error(self, request, client_address) -> None:
        """A scraper that went away mid-reply: one log line, not a traceback on stderr."""
        log.warning("metrics_request_failed", peer=f"{client_address[0]}:{client_address[1]}",
                    reason=repr(sys.exc_info()[1]))


class _Handler(BaseHTTPRequestHandler):
    registry: CollectorRegistry
    readiness: Readiness

    def do_GET(self) -> None:
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            self._reply(200, generate_latest(self.registry), CONTENT_TYPE_LATEST)
        elif path == "/livez":
            self._reply(200, b"ok\n", "text/plain; charset=utf-8")
        elif path == "/readyz":
            reason = self.readiness.not_ready()
            body = {"ready": True} if reason is None else {"ready": False, **reason}
            self._reply(200 if reason is None else 503, json.dumps(body).encode() + b"\n",
                        "application/json")
        else:
            self._reply(404, b"not found: try /metrics, /livez or /readyz\n",
                        "text/plain; charset=utf-8")

    def _reply(self, status: int, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args) -> None:
        """No log line per scrape."""
