"""The operator CLI: argument parsing, where port and token come from, output and exit codes."""

import json
import socket

import pytest

from payswitch.client.cli import build_parser, main, resolve_token
from payswitch.client.discovery import ConfigError, resolve_addresses, resolve_port
from payswitch.client.tables import iso_utc, table
from payswitch.protocol import error_reply, ok_reply


def parse(*argv: str):
    return build_parser().parse_args(list(argv))


def test_transfer_arguments():
    args = parse("transfer", "a", "b", "150", "--currency", "USD", "--pending", "--timeout", "60")
    assert (args.debit, args.credit, args.amount) == ("a", "b", 150)
    assert args.pending and args.timeout == 60 and args.id is None


def test_non_integer_amount_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse("transfer", "a", "b", "1.50")
    assert exit_info.value.code == 2


def test_caps_parse_and_none_lifts_a_cap_only_in_set_participant():
    args = parse("set-participant", "bank-a", "--cap", "USD=1000", "--cap", "EUR=none", "--suspend")
    assert args.caps == [("USD", 1000), ("EUR", None)] and args.suspension == "suspend"
    assert parse("create-participant", "bank-a", "Bank A", "--cap", "USD=5").caps == [("USD", 5)]
    with pytest.raises(SystemExit):
        parse("create-participant", "bank-a", "Bank A", "--cap", "USD=none")


def test_suspend_and_resume_exclude_each_other():
    with pytest.raises(SystemExit):
        parse("set-participant", "bank-a", "--suspend", "--resume")


def test_create_account_owner_is_not_the_session_participant():
    args = parse("--participant", "ops", "create-account", "a-1", "--participant", "bank-a",
                 "--currency", "USD", "--overdraft-limit", "unlimited")
    assert args.participant == "ops" and args.owner == "bank-a"
    assert args.overdraft_limit is None
    assert parse("create-account", "a-2", "--participant", "p", "--currency", "USD") \
        .overdraft_limit == 0


def test_port_comes_from_server_json(tmp_path):
    args = parse("--data-dir", str(tmp_path), "stats")
    assert resolve_port(args) == 7878
    (tmp_path / "server.json").write_text(json.dumps({"host": "127.0.0.1", "port": 4321, "pid": 1}))
    assert resolve_port(args) == 4321
    assert resolve_port(parse("--data-dir", str(tmp_path), "--port", "99", "stats")) == 99
    (tmp_path / "server.json").write_text("{")
    with pytest.raises(ConfigError):
        resolve_port(args)


def test_hosts_repeat_take_comma_lists_and_get_the_default_port(tmp_path):
    args = parse("--data-dir", str(tmp_path), "--host", "n1:7001, n2", "--host", "[::1]:7003",
                 "--host", "::1", "stats")
    assert args.hosts == [("n1", 7001), ("n2", None), ("::1", 7003), ("::1", None)]
    assert resolve_addresses(args) == [("n1", 7001), ("n2", 7878), ("::1", 7003), ("::1", 7878)]
    (tmp_path / "server.json").write_text(json.dumps({"port": 4321}))
    assert resolve_addresses(args)[1] == ("n2", 4321)
    args = parse("--data-dir", str(tmp_path), "--host", "n2", "--port", "99", "stats")
    assert resolve_addresses(args) == [("n2", 99)]
    assert resolve_addresses(parse("--data-dir", str(tmp_path), "stats")) == [("127.0.0.1", 4321)]
    (tmp_path / "server.json").write_text("{")  # not read when every address has its port
    assert resolve_addresses(parse("--data-dir", str(tmp_path), "--host", "n1:1", "stats")) == \
        [("n1", 1)]


@pytest.mark.parametrize("hosts", ["n1:", "n1:0", "n1,,n2", "[::1", "n1:http"])
def test_a_malformed_host_is_a_usage_error(hosts, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse("--host", hosts, "stats")
    assert exit_info.value.code == 2 and "--host" in capsys.readouterr().err


def test_admin_token_from_flag_then_environment_then_file(tmp_path):
    args = parse("--data-dir", str(tmp_path), "stats")
    with pytest.raises(ConfigError, match="admin.token"):
        resolve_token(args, {})
    (tmp_path / "admin.token").write_text("from-file\n")
    assert resolve_token(args, {}) == "from-file"
    assert resolve_token(args, {"SWITCH_ADMIN_TOKEN": "from-env"}) == "from-env"
    flagged = parse("--data-dir", str(tmp_path), "--token", "from-flag", "stats")
    assert resolve_token(flagged, {"SWITCH_ADMIN_TOKEN": "from-env"}) == "from-flag"


def test_other_participants_must_pass_their_token(tmp_path):
    (tmp_path / "admin.token").write_text("admin-secret")
    args = parse("--data-dir", str(tmp_path), "--participant", "bank-a", "stats")
    with pytest.raises(ConfigError, match="--token is required"):
        resolve_token(args, {"SWITCH_ADMIN_TOKEN": "admin-secret"})


def test_missing_token_exits_2(tmp_path, capsys):
    assert main(["--data-dir", str(tmp_path), "stats"], environ={}) == 2
    assert "no admin token" in capsys.readouterr().err


def test_unreachable_switch_exits_2(tmp_path, capsys):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        code = main(["--port", str(port), "--token", "t", "stats"], environ={})
    assert code == 2
    assert f"no answer from the switch at 127.0.0.1:{port}" in capsys.readouterr().err


def cli(peer, *argv: str) -> int:
    return main(["--port", str(peer.port), "--token", "t", *argv], environ={})


def test_refused_transfer_prints_the_code_and_exits_1(thread_peer, capsys):
    thread_peer.on("transfer", lambda r: error_reply(r["id"], "insufficient_funds", "short by 5"))
    assert cli(thread_peer, "transfer", "a", "b", "10") == 1
    captured = capsys.readouterr()
    assert captured.err == "error: insufficient_funds: short by 5\n" and captured.out == ""
    assert thread_peer.ops("transfer")[0]["args"]["id"].startswith("cli-")


def test_transfer_json_output(thread_peer, capsys):
    thread_peer.on("transfer", lambda r: ok_reply(r["id"], {"status": "created", "timestamp": 5}))
    assert cli(thread_peer, "--json", "transfer", "a", "b", "10", "--id", "t-1") == 0
    assert json.loads(capsys.readouterr().out) == {"id": "t-1", "status": "created",
                                                   "timestamp": 5}


def test_transfer_with_unknown_outcome_exits_3_and_says_to_resend(thread_peer, capsys):
    thread_peer.on("transfer", lambda r: "close")  # every attempt lost after it was sent
    assert cli(thread_peer, "--retry-deadline", "0.3", "transfer", "a", "b", "10",
               "--id", "t-9") == 3
    captured = capsys.readouterr()
    assert captured.out == "" and "failed" not in captured.err
    assert captured.err.startswith("error: transfer t-9: outcome unknown")
    assert "same id is safe" in captured.err
    assert len(thread_peer.ops("transfer")) >= 2


def test_ping_prints_each_round_trip(thread_peer, capsys):
    assert cli(thread_peer, "ping", "--count", "3") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3 and len(thread_peer.ops("ping")) == 3
    assert all(line.startswith(f"pong from 127.0.0.1:{thread_peer.port} in ")
               and line.endswith(" ms") for line in lines)
    assert cli(thread_peer, "--json", "ping") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["port"] == thread_peer.port and len(data["round_trip_ns"]) == 1
    assert data["round_trip_ns"][0] > 0


def test_ping_without_an_answer_exits_non_zero(thread_peer, capsys):
    thread_peer.on("ping", lambda r: "silent")
    assert cli(thread_peer, "--request-timeout", "0.2", "--retry-deadline", "0", "ping") == 2
    assert "no answer from the switch" in capsys.readouterr().err
    with socket.socket() as sock:  # nothing listens there
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        assert main(["--port", str(port), "--token", "t", "ping"], environ={}) == 2
    with pytest.raises(SystemExit):
        parse("ping", "--count", "0")


TS = 1764851696123456789  # 2025-12-04T12:34:56.123456789Z


@pytest.mark.parametrize("ns, text", [
    (TS, "2025-12-04T12:34:56.123456789Z"),
    (0, "1970-01-01T00:00:00.000000000Z"),
    (1, "1970-01-01T00:00:00.000000001Z"),
    (2**63 - 1, "2262-04-11T23:47:16.854775807Z"),
    (None, None),
])
def test_iso_utc_keeps_every_nanosecond(ns, text):
    assert iso_utc(ns) == text


def test_transfer_time_is_iso_utc_and_raw_with_json(thread_peer, capsys):
    thread_peer.on("transfer", lambda r: ok_reply(r["id"], {"status": "created", "timestamp": TS}))
    assert cli(thread_peer, "transfer", "a", "b", "10", "--id", "t-1") == 0
    assert "timestamp  2025-12-04T12:34:56.123456789Z" in capsys.readouterr().out
    assert cli(thread_peer, "--json", "transfer", "a", "b", "10", "--id", "t-1") == 0
    assert json.loads(capsys.readouterr().out)["timestamp"] == TS


def test_lookup_history_and_windows_show_iso_times(thread_peer, capsys):
    record = {"id": "t-1", "debit_account": "a", "credit_account": "b", "amount": 5,
              "currency": "USD", "reference": None, "pending": False, "timeout": 0,
              "post_pending_id": None, "void_pending_id": None, "state": "posted",
              "timestamp": TS}
    thread_peer.on("lookup_transfers", lambda r: ok_reply(r["id"], {"transfers": [record]}))
    thread_peer.on("get_account_transfers", lambda r: ok_reply(
        r["id"], {"transfers": [record], "next": TS, "next_cursor": str(TS)}))
    windows = [{"window_id": 1, "state": "closed", "opened_at": TS - 10**9, "closed_at": TS},
               {"window_id": 2, "state": "open", "opened_at": TS, "closed_at": None}]
    thread_peer.on("list_windows", lambda r: ok_reply(r["id"], {"windows": windows}))
    thread_peer.on("get_window", lambda r: ok_reply(r["id"], {**windows[0], "transfers": 0}))
    assert cli(thread_peer, "lookup", "t-1") == 0
    assert "2025-12-04T12:34:56.123456789Z" in capsys.readouterr().out.splitlines()[1]
    assert cli(thread_peer, "history", "a") == 0
    out = capsys.readouterr().out
    assert "2025-12-04T12:34:56.123456789Z" in out and f"more: --after {TS}" in out
    assert cli(thread_peer, "--json", "history", "a") == 0
    page = json.loads(capsys.readouterr().out)
    assert page["transfers"][0]["timestamp"] == TS and page["next_cursor"] == str(TS)
    assert cli(thread_peer, "windows") == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert rows == [["1", "closed", "2025-12-04T12:34:55.123456789Z",
                     "2025-12-04T12:34:56.123456789Z"],
                    ["2", "open", "2025-12-04T12:34:56.123456789Z", "-"]]
    assert cli(thread_peer, "--json", "windows") == 0
    assert json.loads(capsys.readouterr().out)[1]["opened_at"] == TS
    assert cli(thread_peer, "window", "report", "1") == 0
    out = capsys.readouterr().out
    assert "opened_at   2025-12-04T12:34:55.123456789Z" in out
    assert "closed_at   2025-12-04T12:34:56.123456789Z" in out


def test_create_participant_prints_the_token_once_given(thread_peer, capsys):
    thread_peer.on("create_participants", lambda r: ok_reply(
        r["id"], {"results": [{"status": "created", "token": "tok-123"}]}))
    assert cli(thread_peer, "create-participant", "bank-a", "Bank A", "--cap", "USD=100") == 0
    assert "tok-123" in capsys.readouterr().out
    assert thread_peer.ops("create_participants")[0]["args"] == {"participants": [
        {"id": "bank-a", "name": "Bank A", "net_debit_cap": {"USD": 100}}]}


def test_item_failure_exits_1(thread_peer, capsys):
    thread_peer.on("create_accounts", lambda r: ok_reply(
        r["id"], {"results": [{"status": "account_exists"}]}))
    assert cli(thread_peer, "create-account", "a-1", "--participant", "p", "--currency", "USD") == 1
    assert capsys.readouterr().err == "error: account_exists: account a-1\n"


def test_balance_table_and_missing_accounts(thread_peer, capsys):
    account = {"id": "a-1", "participant": "bank-a", "currency": "USD", "overdraft_limit": None,
               "debits_posted": 0, "credits_posted": 1500, "debits_pending": 200,
               "credits_pending": 0, "balance": 1500, "available": 1300}
    thread_peer.on("lookup_accounts", lambda r: ok_reply(r["id"], {"accounts": [account]}))
    assert cli(thread_peer, "balance", "a-1", "nope") == 1
    captured = capsys.readouterr()
    header, row = captured.out.splitlines()
    assert header.split() == ["account", "participant", "currency", "balance", "available",
                              "debits_pending", "credits_pending", "overdraft_limit"]
    assert row.split() == ["a-1", "bank-a", "USD", "1500", "1300", "200", "0", "unlimited"]
    assert captured.err == "error: account_not_found: nope\n"


def test_table_aligns_numbers_right_and_text_left():
    text = table(["id", "amount"], [["a", 5], ["longer", 1500], ["c", None]])
    assert text.splitlines() == ["id      amount",
                                 "a            5",
                                 "longer    1500",
                                 "c            -"]
