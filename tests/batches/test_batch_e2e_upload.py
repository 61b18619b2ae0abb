"""Multi-part uploads against a switch whose frames are small (4 KiB): files many times larger
than one frame go through in parts, joined in `seq` order, in both codecs."""
import pytest

from batches.batch_e2e_support import (
    IBAN_CREDITOR, IBAN_DEBTOR, Session, create_iban_accounts, csv_file, running_switch,
)
from batches.batch_formats_support import Block, Tx, pain001
from payswitch.protocol import encode_request
from support.wire import WireClient
from support.world import FUNDS

MAX_FRAME = 4096
PART = 2048  # base64 in JSON makes 2732 bytes of it, within one 4 KiB frame


@pytest.fixture
def world(tmp_path):
    with running_switch(tmp_path, "--max-frame-bytes", str(MAX_FRAME)) as (switch, tokens):
        yield switch, tokens


@pytest.fixture
def sessions(world, codec):
    switch, tokens = world
    with Session(switch, "admin", tokens["admin"], codec) as admin, \
            Session(switch, "bank-a", tokens["bank-a"], codec) as bank_a:
        yield admin, bank_a


def big_csv(count: int) -> tuple[bytes, int]:
    rows = [(f"m{n:05d}", "a-1", "b-1" if n % 2 else "a-2", 1 + n % 9, "USD", f"part test {n}")
            for n in range(count)]
    return csv_file(rows), sum(row[3] for row in rows)


def test_a_file_larger_than_a_frame_goes_through_in_parts(world, sessions):
    switch, tokens = world
    admin, bank_a = sessions
    content, total = big_csv(3000)
    assert len(content) > 25 * MAX_FRAME
    # Sent whole, it cannot fit in a frame: the switch refuses the frame.
    frame = encode_request(1, "submit_batch", {"batch_id": "whole", "format": "csv", "mode":
                                               "partial", "control_count": 3000,
                                               "control_sum": total,
                                               "content": bank_a.wire_content(content)},
                           bank_a.codec)
    assert len(frame) > MAX_FRAME
    with WireClient(switch.host, switch.port) as raw:
        raw.hello("bank-a", tokens["bank-a"])
        raw.send_raw(frame)
        reply = raw.recv()
        assert (reply["id"], reply["error"]["code"]) == (None, "frame_too_large")
        assert raw.is_closed_by_server()
    parts = bank_a.upload("parts", content, PART)
    assert parts == -(-len(content) // PART)
    assert bank_a.submit("parts", "csv", count=3000, total=total)["ok"]
    summary = bank_a.wait("parts")
    assert (summary["state"], summary["total"], summary["created"]) == ("completed", 3000, 3000)
    results = bank_a.results("parts", limit=1000)
    assert [r["id"] for r in results] == [f"m{n:05d}" for n in range(3000)]
    to_b = sum(1 + n % 9 for n in range(3000) if n % 2)
    assert admin.balances(["a-1", "a-2", "b-1"]) == \
        {"a-1": FUNDS - total, "a-2": total - to_b, "b-1": to_b}


def test_parts_arrive_in_any_order_and_join_by_seq(sessions):
    admin, bank_a = sessions
    content, total = big_csv(300)
    parts = [content[i:i + PART] for i in range(0, len(content), PART)]
    assert len(parts) >= 5
    for seq in reversed(range(len(parts))):
        reply = bank_a.ok("upload_batch_part", {"batch_id": "shuffled", "seq": seq,
                                                "data": bank_a.wire_bytes(parts[seq])})
        assert reply == {"batch_id": "shuffled", "seq": seq, "bytes": len(parts[seq])}
    # Resending a part unchanged is harmless; changing it is refused.
    assert bank_a.ok("upload_batch_part", {"batch_id": "shuffled", "seq": 1,
                                           "data": bank_a.wire_bytes(parts[1])})["bytes"] == \
        len(parts[1])
    error = bank_a.fail("upload_batch_part", {"batch_id": "shuffled", "seq": 1,
                                              "data": bank_a.wire_bytes(parts[2])})
    assert error["code"] == "exists_with_different_fields"
    assert bank_a.submit("shuffled", "csv", count=300, total=total)["ok"]
    assert bank_a.wait("shuffled")["created"] == 300
    assert [r["id"] for r in bank_a.results("shuffled")] == [f"m{n:05d}" for n in range(300)]


def test_an_uploaded_batch_resent_inline_is_the_same_batch_and_other_content_is_refused(
        sessions):
    """An upload's digest is reported by the parse worker; a resubmission compares with it,
    both right after the first submission (possibly still parsed) and after it completed."""
    _, bank_a = sessions
    content, total = big_csv(40)
    other = content.replace(b"m00001,", b"x00001,")
    assert bank_a.upload("resent", content, PART // 4) >= 3
    assert bank_a.submit("resent", "csv", count=40, total=total)["ok"]
    for _ in range(2):
        reply = bank_a.submit("resent", "csv", content=content, count=40, total=total)
        assert reply["ok"] and reply["result"]["batch_id"] == "resent", reply
        assert bank_a.wait("resent")["created"] == 40
    error = bank_a.submit("resent", "csv", content=other, count=40, total=total)["error"]
    assert error["code"] == "exists_with_different_fields"


def test_a_missing_part_is_refused_until_it_arrives(world, sessions):
    switch, tokens = world
    admin, bank_a = sessions
    content, total = big_csv(200)
    parts = [content[i:i + PART] for i in range(0, len(content), PART)]
    assert len(parts) >= 3
    for seq in (0, 2):
        bank_a.ok("upload_batch_part", {"batch_id": "gap", "seq": seq,
                                        "data": bank_a.wire_bytes(parts[seq])})
    error = bank_a.submit("gap", "csv", count=200, total=total)["error"]
    assert error["code"] == "bad_request" and "part 1 is missing" in error["message"]
    # The parts belong to bank-a: another participant can neither add to nor submit them.
    with Session(switch, "bank-b", tokens["bank-b"], bank_a.codec) as bank_b:
        assert bank_b.fail("upload_batch_part", {"batch_id": "gap", "seq": 1, "data":
                                                 bank_b.wire_bytes(parts[1])})["code"] == \
            "exists_with_different_fields"
    for seq in range(1, len(parts)):
        bank_a.ok("upload_batch_part", {"batch_id": "gap", "seq": seq,
                                        "data": bank_a.wire_bytes(parts[seq])})
    assert bank_a.submit("gap", "csv", count=200, total=total)["ok"]
    assert bank_a.wait("gap")["created"] == 200
    assert admin.balances(["a-1"]) == {"a-1": FUNDS - total}


def test_submit_without_content_or_parts_is_refused(sessions):
    _, bank_a = sessions
    error = bank_a.submit("empty", "csv", count=0, total=0)["error"]
    assert error["code"] == "bad_request"


def test_pain001_in_parts(sessions):
    admin, bank_a = sessions
    create_iban_accounts(admin)
    txs = [Tx(f"E-{n:04d}", f"{n}.{n % 100:02d}", creditor=IBAN_CREDITOR,
              ustrd=[f"invoice {n}"]) for n in range(1, 201)]
    document = pain001([Block("P1", txs[:120], debtor=IBAN_DEBTOR),
                        Block("P2", txs[120:], debtor=IBAN_DEBTOR)], version="09")
    total = sum(n * 100 + n % 100 for n in range(1, 201))
    assert len(document) > 20 * MAX_FRAME
    bank_a.upload("pain-parts", document, PART)
    assert bank_a.submit("pain-parts", "pain.001", count=200, total=total)["ok"]
    summary = bank_a.wait("pain-parts")
    assert (summary["state"], summary["created"]) == ("completed", 200), summary
    assert admin.balances([IBAN_CREDITOR]) == {IBAN_CREDITOR: total}
