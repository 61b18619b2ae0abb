"""A blocking raw-socket client that speaks frames, for tests that check exact bytes and replies."""
import socket
import struct

from payswitch.protocol import FrameDecoder, decode_body, encode_body, encode_frame
from payswitch.protocol.replies import InOrderReplies

REPLY_MAX_BYTES = 256 << 20


class WireClient:
    def __init__(self, host: str, port: int, timeout_s: float = 20.0):
        self._start(socket.create_connection((host, port), timeout=timeout_s))

    def _start(self, sock: socket.socket) -> None:
        self.sock = sock
        self.decoder = FrameDecoder(REPLY_MAX_BYTES)
        self.bodies: list[bytes] = []
        self.next_id = 1
        # Only what `request` sends is matched; `send` and `recv` are raw.
        self.replies = InOrderReplies(REPLY_MAX_BYTES, decode=self._decode)
        self.reply_codec: str | None = None

    def close(self) -> None:
        self.sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def send(self, message: dict, codec: str = "json") -> None:
        self.send_raw(encode_frame(encode_body(message, codec)))

    def recv_body(self) -> bytes:
        """The next reply body; raises ConnectionError when the server closed the connection."""
        while not self.bodies:
            data = self.sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the connection")
            self.bodies.extend(self.decoder.feed(data))
        return self.bodies.pop(0)

    def recv(self) -> dict:
        return decode_body(self.recv_body())[0]

    def request(self, op: str, args=None, codec: str = "json", request_id=None) -> dict:
        """Sends one request and returns its reply, which must answer it (the reply matcher
        checks the id) in the request's codec."""
        if request_id is None:
            request_id, self.next_id = self.next_id, self.next_id + 1
        message = {"id": request_id, "op": op}
        if args is not None:
            message["args"] = args
        self.send(message, codec)
        self.replies.sent(request_id, op)
        _, reply = self.replies.match(self.recv_body())
        assert self.reply_codec == codec, f"{op}: reply in {self.reply_codec}, request in {codec}"
        return reply

    def _decode(self, body: bytes) -> dict:
        reply, self.reply_codec = decode_body(body)
        return reply

    def call(self, op: str, args=None, codec: str = "json") -> dict:
        """The result of a request that must succeed."""
        reply = self.request(op, args, codec)
        assert reply["ok"], reply
        return reply["result"]

    def hello(self, participant: str, token: str, codec: str = "json") -> dict:
        return self.call("hello", {"participant": participant, "token": token}, codec)

    def is_closed_by_server(self) -> bool:
        try:
            return self.sock.recv(1) == b""
        except (ConnectionResetError, socket.timeout):
            return True


def frame_header(length: int) -> bytes:
    return struct.pack(">I", length)
