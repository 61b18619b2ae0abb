"""Group commit in the WAL writer: real files, real fsyncs, a real event loop; the clients are
callbacks that append a connection's next record once its last one is durable."""
import asyncio
import time

from payswitch.switch.storage import wal_writer
from payswitch.switch.storage.wal_writer import WalWriter
from payswitch.switch.storage.records import encode_record

CLIENTS = 16
ROUNDS = 10
# Far longer than records take to come (a turn of the event loop), so these tests do not depend
# on how fast the machine is (the writer takes any hold; the configuration caps it), yet short:
# the last hold of a run waits for a client that has stopped.
PATIENT_WAIT_S = 1.0
TEST_TIMEOUT_S = 30.0


class ClosedLoop:
    """CLIENTS clients with one record each outstanding: each sends its next as soon as its last
    is durable, either at once (in on_durable) or on the next turn of the event loop."""

    def __init__(self, tmp_path, group_wait_s: float, answer_later: bool,
                 loop_has_work=lambda: False):
        wal_dir = tmp_path / "wal"
        wal_dir.mkdir()
        self.answer_later = answer_later
        self.sent = [0] * CLIENTS
        self.owner: dict[int, int] = {}  # seq of an outstanding record -> its client
        self.durable: list[int] = []  # each durable prefix reported, in order
        self.failures: list[OSError] = []
        self.writer = WalWriter(wal_dir, 1, 1 << 20, True, self.on_durable, self.failures.append,
                                group_wait_s=group_wait_s, loop_has_work=loop_has_work)

    def send(self, client: int) -> None:
        if self.sent[client] < ROUNDS:
            self.sent[client] += 1
            self.owner[self.writer.append_encoded(encode_record(b"%d" % client))] = client

    def on_durable(self, seq: int) -> None:
        self.durable.append(seq)
        for answered in sorted(s for s in self.owner if s <= seq):
            client = self.owner.pop(answered)
            if self.answer_later:
                asyncio.get_running_loop().call_soon(self.send, client)
            else:
                self.send(client)

    async def run(self) -> list[int]:
        """Runs every client to the end; returns how many records each write carried."""
        try:
            await asyncio.wait_for(self._run(), TEST_TIMEOUT_S)
        finally:
            self.writer.close()
        assert not self.failures
        assert self.writer.fsync_count == len(self.durable)
        return [seq - before for seq, before in zip(self.durable, [0] + self.durable)]

    async def _run(self) -> None:
        self.send(0)
        await asyncio.sleep(0)  # the first write starts, with the first client's record alone
        for client in range(1, CLIENTS):
            self.send(client)
        while self.writer.durable_seq < CLIENTS * ROUNDS:
            await self.writer.drain()
            await asyncio.sleep(0)  # clients answering on a later turn send


async def test_the_next_write_carries_the_records_the_released_replies_brought(tmp_path,
                                                                             monkeypatch):
    """With no fsync fast enough to write in the loop (as after a slow one), every write is
    handed to the WAL thread. The first takes the one record there was; the other 15 collect
    meanwhile. Once it is durable its client answers at once, and the next write takes that
    record too rather than going ahead with the 15 and leaving it to wait behind them (two
    groups of 1 and 15 taking turns): every later write carries all 16 clients."""
    monkeypatch.setattr(wal_writer, "IN_LOOP_WRITE_MAX_FSYNC_S", -1.0)
    loop = ClosedLoop(tmp_path, PATIENT_WAIT_S, answer_later=False)
    groups = await loop.run()
    # the first client's last round was one ahead: the others' last records go alone, after the
    # one hold that ran out (the first client had stopped)
    assert groups == [1] + [CLIENTS] * (ROUNDS - 1) + [CLIENTS - 1]
    assert (loop.writer.holds, loop.writer.holds_run_out) == (ROUNDS, 1)
    assert (loop.writer.writes_in_loop, loop.writer.writes_handed) == (0, ROUNDS + 1)


async def test_the_next_write_waits_for_clients_answering_on_a_later_turn(tmp_path,
                                                                            monkeypatch):
    """Clients that send their next record a turn of the event loop after their reply (as over
    a socket), and every fsync fast enough to write in the loop (however slow this machine's
    disk is now): the first write, the writer idle,
    is made in the loop with the one record there was; the others collect while the writer is
    idle again, and go with the first client's next. From then on each write holds until all 16
    are there, and is made in the loop; the last, after the hold that ran out (timed by a timer
    of the loop's), by the WAL thread."""
    monkeypatch.setattr(wal_writer, "IN_LOOP_WRITE_MAX_FSYNC_S", TEST_TIMEOUT_S)
    loop = ClosedLoop(tmp_path, PATIENT_WAIT_S, answer_later=True)
    groups = await loop.run()
    assert groups == [1] + [CLIENTS] * (ROUNDS - 1) + [CLIENTS - 1]
    assert (loop.writer.holds, loop.writer.holds_run_out) == (ROUNDS - 1, 1)
    assert (loop.writer.writes_in_loop, loop.writer.writes_handed) == (ROUNDS, 1)


async def test_without_a_wait_records_sent_on_a_later_turn_miss_the_next_write(tmp_path):
    """group_wait_s 0 and every write in the WAL thread (as when replicated): nothing is held, so
    the write after the first goes ahead with the 15 that collected, and the first client's next
    record waits for the one after: the groups take turns."""
    loop = ClosedLoop(tmp_path, 0.0, answer_later=True, loop_has_work=None)
    groups = await loop.run()
    assert groups[:4] == [1, CLIENTS - 1, 1, CLIENTS - 1]
    assert sum(groups) == CLIENTS * ROUNDS
    assert loop.writer.writes_in_loop == 0


async def test_a_hold_for_records_that_never_come_ends_and_writes_what_came(tmp_path):
    """Two records outstanding, and the client of the first never sends again: the next write
    waits for it only group_wait_s, then the second record is made durable alone."""
    wal_dir = tmp_path / "wal"
    wal_dir.mkdir()
    durable: list[int] = []
    writer = WalWriter(wal_dir, 1, 1 << 20, True, durable.append, lambda error: None,
                       group_wait_s=0.001)
    try:
        writer.append_encoded(encode_record(b"first"))
        await asyncio.sleep(0)  # written alone
        writer.append_encoded(encode_record(b"second"))
        await asyncio.wait_for(writer.drain(), TEST_TIMEOUT_S)
        assert durable == [1, 2]
        writer.append_encoded(encode_record(b"third"))  # a later record starts a write itself
        await asyncio.wait_for(writer.drain(), TEST_TIMEOUT_S)
        assert durable == [1, 2, 3] and writer.fsync_count == 3
    finally:
        writer.close()


async def test_a_hold_after_a_write_in_the_loop_waits_its_time_then_writes_what_came(tmp_path):
    """Two clients send a record each to an idle writer, which writes them in the loop. Then one
    client sends again and the other never does: the hold, timed by the loop, ends no sooner than
    group_wait_s after that write, and the record that came is written, by the WAL thread."""
    wal_dir = tmp_path / "wal"
    wal_dir.mkdir()
    group_wait_s = 0.2
    written_at_s: dict[int, float] = {}  # first seq of each write -> when on_batch saw it
    durable_at_s: dict[int, float] = {}
    writer = None

    def on_durable(seq: int) -> None:
        durable_at_s[seq] = time.perf_counter()
        if seq == 2:  # the first client answers; the second never does
            writer.append_encoded(encode_record(b"first client"))

    writer = WalWriter(wal_dir, 1, 1 << 20, True, on_durable, lambda error: None,
                       on_batch=lambda batch, seq: written_at_s.setdefault(seq,
                                                                           time.perf_counter()),
                       group_wait_s=group_wait_s, loop_has_work=lambda: False)
    try:
        writer.append_encoded(encode_record(b"first client"))
        writer.append_encoded(encode_record(b"second client"))
        while writer.durable_seq < 3:
            await asyncio.wait_for(writer.drain(), TEST_TIMEOUT_S)
        assert sorted(written_at_s) == [1, 3]  # records 1 and 2 together, then 3
        assert (writer.writes_in_loop, writer.writes_handed) == (1, 1)
        assert (writer.holds, writer.holds_run_out) == (1, 1)
        # Half the wait: what passes between the write's end and on_durable is not measured
        assert written_at_s[3] - durable_at_s[2] >= group_wait_s / 2
    finally:
        writer.close()


async def test_drain_and_close_do_not_wait_out_a_hold_with_nothing_pending(tmp_path):
    """Everything appended is durable while the writer holds for the records its clients owe:
    drain returns at once, and close ends the hold."""
    wal_dir = tmp_path / "wal"
    wal_dir.mkdir()
    writer = WalWriter(wal_dir, 1, 1 << 20, True, lambda seq: None, lambda error: None,
                       group_wait_s=TEST_TIMEOUT_S * 2)
    writer.append_encoded(encode_record(b"first"))
    writer.append_encoded(encode_record(b"second"))  # one write; then a hold for two more
    await asyncio.wait_for(writer.drain(), TEST_TIMEOUT_S)
    assert writer.durable_seq == 2
    await asyncio.wait_for(asyncio.to_thread(writer.close), TEST_TIMEOUT_S)
    assert writer.fsync_count == 1


async def test_holds_that_run_out_back_off(tmp_path):
    """Each write carries one record while the next is appended meanwhile, and no client ever
    answers a reply (as in an open loop): every hold runs out, and after each the groups written
    without one double (1, 2, 4, ...), so only a few groups pay the wait."""
    wal_dir = tmp_path / "wal"
    wal_dir.mkdir()
    records = 16
    writer = None

    def one_more_while_writing(batch, first_seq):
        if writer.appended_seq < records:
            writer.append_encoded(encode_record(b"next"))

    writer = WalWriter(wal_dir, 1, 1 << 20, True, lambda seq: None, lambda error: None,
                       on_batch=one_more_while_writing, group_wait_s=0.001)
    try:
        writer.append_encoded(encode_record(b"first"))
        while writer.durable_seq < records:
            await asyncio.wait_for(writer.drain(), TEST_TIMEOUT_S)
        # held after records 1, 3, 6 and 11; then 1, 2 and 4 groups went unheld, and 8 would
        assert (writer.holds, writer.holds_run_out) == (4, 4)
        assert writer.fsync_count == records
    finally:
        writer.close()


async def test_a_hold_counts_requests_not_records(tmp_path):
    """The first write carries one record standing for the 16 clients' requests (a group of
    transfers, as switch/turns.py makes of requests read together); once durable, the clients
    send again, one record each on a later turn: the next write holds until all 16 are there,
    not until one record is, as many as there were outstanding."""
    wal_dir = tmp_path / "wal"
    wal_dir.mkdir()
    written: list[int] = []  # records per write
    writer = None

    def clients_answer(seq: int) -> None:
        if seq == 1:
            loop = asyncio.get_running_loop()
            for client in range(CLIENTS):
                loop.call_soon(writer.append, client, "bank", "transfer", {})

    writer = WalWriter(wal_dir, 1, 1 << 20, True, clients_answer, lambda error: None,
                       on_batch=lambda batch, first_seq: written.append(len(batch)),
                       group_wait_s=PATIENT_WAIT_S)
    try:
        writer.append(0, "bank", "transfer_group", {}, requests=CLIENTS)
        await asyncio.sleep(0)  # the first write starts
        while writer.durable_seq < 1 + CLIENTS:
            await asyncio.wait_for(writer.drain(), TEST_TIMEOUT_S)
            await asyncio.sleep(0)
        assert written == [1, CLIENTS]  # counting records, it would have gone with the first
        assert (writer.appended_requests, writer.durable_requests) == (2 * CLIENTS, 2 * CLIENTS)
    finally:
        writer.close()


async def test_while_connections_wait_for_turns_every_write_goes_to_the_wal_thread(tmp_path):
    """The same clients with the loop busy (connections waiting for a turn, whose reads and pings
    it would handle during the fsync): every write is handed to the WAL thread."""
    loop = ClosedLoop(tmp_path, PATIENT_WAIT_S, answer_later=True, loop_has_work=lambda: True)
    groups = await loop.run()
    assert sum(groups) == CLIENTS * ROUNDS
    assert (loop.writer.writes_in_loop, loop.writer.writes_handed) == (0, len(groups))
