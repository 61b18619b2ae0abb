"""A participant's window report counts that participant's transfers, not everyone's: over the
wire, for the open window, a closed one, after a clean restart (snapshot) and after a crash
(log replay), and in the CLI's `window report`."""
import json

from support.wire import WireClient

from settlement.settlement_support import create_settlement_world, ok, run_cli, tx

BANKS = ["bank-a", "bank-b", "bank-c"]


def send_traffic(admin: WireClient, window: int) -> dict[str, int]:
    """Transfers between different pairs; returns how many each participant takes part in."""
    items = [tx(f"w{window}-ab-{n}", "bank-a-1", "bank-b-1", 10 + n) for n in range(2)]
    items += [tx(f"w{window}-bc-{n}", "bank-b-1", "bank-c-1", 20 + n) for n in range(3)]
    items += [tx(f"w{window}-ac", "bank-a-1", "bank-c-2", 30),
              tx(f"w{window}-on-us", "bank-a-1", "bank-a-2", 40)]  # on-us: in no report
    results = ok(admin, "create_transfers", {"transfers": items})["results"]
    assert {r["status"] for r in results} == {"created"}, results
    # a pending transfer counts once it is posted, as one transfer of both sides
    ok(admin, "transfer", tx(f"w{window}-hold", "bank-c-1", "bank-a-1", 50, pending=True))
    ok(admin, "transfer", {"id": f"w{window}-post", "post_pending_id": f"w{window}-hold"})
    return {"bank-a": 2 + 1 + 1, "bank-b": 2 + 3, "bank-c": 3 + 1 + 1, "admin": 2 + 3 + 1 + 1}


def reported_counts(switch, tokens: dict[str, str], window_id: int) -> dict[str, int]:
    counts = {}
    with WireClient(switch.host, switch.port) as admin:
        admin.hello("admin", switch.admin_token)
        counts["admin"] = ok(admin, "get_window", {"window_id": window_id})["transfers"]
    for bank in BANKS:
        with WireClient(switch.host, switch.port) as client:
            client.hello(bank, tokens[bank])
            counts[bank] = ok(client, "get_window", {"window_id": window_id})["transfers"]
    return counts


def test_each_participant_counts_only_its_own_transfers(switch, admin):
    tokens = create_settlement_world(admin, BANKS)
    first = send_traffic(admin, 1)
    assert reported_counts(switch, tokens, 1) == first  # open window: so far
    closed = ok(admin, "close_window", {})
    assert closed["transfers"] == first["admin"]
    second = {"bank-a": 0, "bank-b": 0, "bank-c": 0, "admin": 0}
    ok(admin, "transfer", tx("w2-ab", "bank-a-1", "bank-b-1", 5))
    second.update({"bank-a": 1, "bank-b": 1, "admin": 1})
    assert reported_counts(switch, tokens, 1) == first  # closed: as it was
    assert reported_counts(switch, tokens, 2) == second  # a new window starts from zero

    switch.restart()  # from the shutdown snapshot
    assert reported_counts(switch, tokens, 1) == first
    assert reported_counts(switch, tokens, 2) == second
    switch.kill()  # the next start replays the log after that snapshot
    switch.start()
    assert reported_counts(switch, tokens, 1) == first
    assert reported_counts(switch, tokens, 2) == second

    code, out, err = run_cli("client", "--port", str(switch.port), "--participant", "bank-b",
                             "--token", tokens["bank-b"], "window", "report", "1",
                             "--format", "json")
    assert code == 0, err
    assert json.loads(out)["transfers"] == first["bank-b"]
