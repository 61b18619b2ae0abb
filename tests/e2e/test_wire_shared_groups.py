"""Many connections with one plain transfer each, read in one poll of the sockets, share one
ledger step and one WAL record (switch/turns.py): over real TCP, against a real switch."""
import signal

from support.processes import suspend
from support.wire import WireClient
from support.world import FUNDS, balances, create_world

CONNECTIONS = 8


def test_one_request_each_on_connections_read_together_share_one_record(switch, admin):
    tokens = create_world(admin)
    clients = [WireClient(switch.host, switch.port) for _ in range(CONNECTIONS)]
    try:
        for client in clients:
            client.hello("bank-a", tokens["bank-a"], "msgpack")
        appended_before = admin.call("stats")["wal"]["appended_seq"]
        suspend(switch.process)  # so that one poll finds every request
        try:
            for n, client in enumerate(clients):
                client.send({"id": n, "op": "transfer", "args": {
                    "id": f"shared-{n}", "debit_account": "a-1", "credit_account": "a-2",
                    "amount": n + 1}}, "msgpack")
            clients[0].send({"id": "after", "op": "ping"}, "msgpack")  # left for its turn
        finally:
            switch.process.send_signal(signal.SIGCONT)
        answered = [client.recv() for client in clients]
        ping = clients[0].recv()
    finally:
        for client in clients:
            client.close()
    assert [(reply["id"], reply["ok"], reply["result"]["status"]) for reply in answered] == [
        (n, True, "created") for n in range(CONNECTIONS)]
    assert (ping["id"], ping["ok"]) == ("after", True)
    assert admin.call("stats")["wal"]["appended_seq"] == appended_before + 1
    moved = sum(range(1, CONNECTIONS + 1))
    assert balances(admin, ["a-1", "a-2"]) == {"a-1": FUNDS - moved, "a-2": moved}
