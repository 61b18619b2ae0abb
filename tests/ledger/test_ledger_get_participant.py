"""get_participant: a participant's own record, its positions and its headroom under its caps."""

from ledger.ledger_support import standard, tr


def usage():
    """p1 (caps USD 500, GBP 100) paid p2 200 and holds 50 pending to p3, both interbank, and
    moved 100 between its own accounts (no position)."""
    env = standard(caps={"p1": {"USD": 500, "GBP": 100}})
    assert env.statuses("p1", [tr("out", "a1", "a2", 200), tr("own", "a1", "b1", 100),
                               tr("hold", "a1", "a3", 50, pending=True)]) == ["created"] * 3
    return env


def row(currency, debits=0, credits=0, reserved=0, headroom=None):
    return {"currency": currency, "debits": debits, "credits": credits, "net": credits - debits,
            "reserved": reserved, "headroom": headroom}


def test_a_participant_reads_its_record_positions_and_headroom():
    env = usage()
    assert env.ex("p1", "get_participant", {"id": "p1"}) == ({
        "id": "p1", "name": "P1", "net_debit_cap": {"USD": 500, "GBP": 100}, "suspended": False,
        "settlement_accounts": {},
        "positions": [row("EUR"), row("GBP", headroom=100),
                      row("USD", debits=200, reserved=50, headroom=250)]}, False)
    assert env.result("p2", "get_participant", {"id": "p2"})["positions"] == [
        row("EUR"), row("USD", credits=200)]


def test_headroom_is_the_largest_interbank_debit_the_cap_lets_through():
    env = usage()
    headroom = env.result("p1", "get_participant", {"id": "p1"})["positions"][-1]["headroom"]
    assert env.transfer("p1", tr("over", "a1", "a2", headroom + 1)) == "net_debit_cap_exceeded"
    assert env.transfer("p1", tr("exact", "a1", "a2", headroom)) == "created"
    assert env.result("p1", "get_participant", {"id": "p1"})["positions"][-1] == \
        row("USD", debits=450, reserved=50, headroom=0)


def test_headroom_follows_receipts_windows_and_a_lowered_cap():
    env = usage()
    assert env.transfer("p2", tr("back", "a2", "a1", 30)) == "created"
    assert env.result("p1", "get_participant", {"id": "p1"})["positions"][-1] == \
        row("USD", debits=200, credits=30, reserved=50, headroom=280)
    env.ex("admin", "close_window", {})  # a new window: pending reservations stay
    assert env.result("p1", "get_participant", {"id": "p1"})["positions"][-1] == \
        row("USD", reserved=50, headroom=450)
    env.ex("admin", "set_participant", {"id": "p1", "net_debit_cap": {"USD": 20},
                                        "suspended": None})
    assert env.result("p1", "get_participant", {"id": "p1"})["positions"][-1] == \
        row("USD", reserved=50, headroom=0)


def test_only_its_own_record_and_the_operator_any():
    env = usage()
    for pid in ("p1", "nobody"):  # the same answer whether the other exists or not
        assert env.error("p2", "get_participant", {"id": pid}) == "forbidden"
    assert env.result("admin", "get_participant", {"id": "p1"}) == \
        env.result("p1", "get_participant", {"id": "p1"})
    assert env.error("admin", "get_participant", {"id": "nobody"}) == "participant_not_found"
    assert env.error("admin", "get_participant", {"id": "admin"}) == "participant_not_found"


def test_it_changes_nothing():
    env = usage()
    before = env.ledger.snapshot_state()
    assert env.ex("p1", "get_participant", {"id": "p1"})[1] is False
    assert env.ledger.snapshot_state() == before
