"""A well-behaved client, run as its own process (so the attacker's threads cannot steal its GIL):
it says hello, then alternates `ping` and `lookup_accounts`, one at a time, a few milliseconds
apart, until `--count` samples are taken or its stdin closes; then prints one JSON line with the
round-trip latencies.

    python tests/hardening/latency_probe.py HOST PORT TOKEN [--count N] [--interval-s S]
"""
import argparse
import json
import socket
import struct
import sys
import threading
import time


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("token")
    parser.add_argument("--count", type=int, default=0, help="0: until stdin closes")
    parser.add_argument("--interval-s", type=float, default=0.002)
    parser.add_argument("--accounts", default="a-1,b-1")
    args = parser.parse_args()

    stop = threading.Event()
    if not args.count:
        def watch_stdin():
            sys.stdin.read()
            stop.set()
        threading.Thread(target=watch_stdin, daemon=True).start()

    sock = socket.create_connection((args.host, args.port), timeout=30)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buffer = bytearray()

    def call(request: dict) -> dict:
        body = json.dumps(request).encode()
        sock.sendall(struct.pack(">I", len(body)) + body)
        while True:
            if len(buffer) >= 4:
                (length,) = struct.unpack_from(">I", buffer)
                if len(buffer) >= 4 + length:
                    reply = json.loads(buffer[4:4 + length])
                    del buffer[:4 + length]
                    return reply
            data = sock.recv(1 << 16)
            if not data:
                raise ConnectionError("server closed the connection")
            buffer.extend(data)

    hello = call({"id": 0, "op": "hello", "args": {"participant": "admin", "token": args.token}})
    if not hello["ok"]:  # not assert: this script runs as a program, maybe under python -O
        raise RuntimeError(f"hello refused: {hello}")
    accounts = args.accounts.split(",")
    samples_ms: list[float] = []
    n = 0
    print(json.dumps({"ready": True}), flush=True)
    while not stop.is_set() and (not args.count or n < args.count):
        n += 1
        request = {"id": n, "op": "ping", "args": {}} if n % 2 else \
            {"id": n, "op": "lookup_accounts", "args": {"ids": accounts}}
        started = time.perf_counter()
        reply = call(request)
        samples_ms.append((time.perf_counter() - started) * 1000)
        if reply["id"] != n or not reply["ok"]:
            raise RuntimeError(f"unexpected reply to request {n}: {reply}")
        time.sleep(args.interval_s)
    sock.close()
    samples_ms.sort()
    print(json.dumps({"samples": len(samples_ms), **summary(samples_ms)}), flush=True)
    return 0


def summary(sorted_ms: list[float]) -> dict:
    def at(fraction: float) -> float:
        return round(sorted_ms[min(len(sorted_ms) - 1, int(fraction * len(sorted_ms)))], 3)
    return {"p50_ms": at(0.5), "p90_ms": at(0.9), "p99_ms": at(0.99),
            "max_ms": round(sorted_ms[-1], 3)}


if __name__ == "__main__":
    sys.exit(main())
