"""The operator CLI against a real switch: window reports exported as JSON and CSV, the bilateral
matrix, closing with settlement postings, settlement accounts."""
import csv
import io
import json

from settlement.settlement_support import create_settlement_world, ok, run_cli, tx


def cli(switch, *argv):
    return run_cli("client", "--data-dir", str(switch.data_dir), *argv)


def traffic(admin):
    ok(admin, "create_transfers", {"transfers": [
        tx("k-1", "bank-a-1", "bank-b-1", 500), tx("k-2", "bank-a-2", "bank-b-2", 25),
        tx("k-3", "bank-b-1", "bank-c-1", 120), tx("k-4", "bank-c-1", "bank-a-1", 40),
        tx("k-5", "bank-d-eur", "bank-a-eur", 77), tx("k-6", "bank-a-1", "bank-a-2", 9)]})


def test_report_exports_json_and_csv(switch, admin, tmp_path):
    create_settlement_world(admin)
    traffic(admin)
    code, out, err = cli(switch, "close-window", "--settle", "USD=hub-usd",
                         "--settle", "EUR=hub-eur")
    assert code == 0, err
    assert "settlement  posted (5 transfers)" in out
    assert "settle:1:bank-a:USD" in out
    report = ok(admin, "get_window", {"window_id": 1})

    target = tmp_path / "w1.json"
    code, out, err = cli(switch, "window", "report", "1", "--format", "json", "--output",
                         str(target))
    assert (code, out.strip()) == (0, f"wrote {target}"), err
    assert json.loads(target.read_text()) == report

    code, out, _ = cli(switch, "window", "report", "1", "--format", "json")
    assert code == 0 and json.loads(out) == report

    target = tmp_path / "w1.csv"
    assert cli(switch, "window", "report", "1", "--format", "csv", "--output", str(target))[0] \
        == 0
    rows = list(csv.reader(io.StringIO(target.read_text())))
    assert rows[0] == ["window_id", "state", "participant", "currency", "debits", "credits",
                       "net", "pay", "receive", "settlement_transfer"]
    assert rows[1:] == [
        ["1", "closed", "bank-a", "EUR", "0", "77", "77", "", "77", "settle:1:bank-a:EUR"],
        ["1", "closed", "bank-a", "USD", "525", "40", "-485", "485", "", "settle:1:bank-a:USD"],
        ["1", "closed", "bank-b", "USD", "120", "525", "405", "", "405", "settle:1:bank-b:USD"],
        ["1", "closed", "bank-c", "USD", "40", "120", "80", "", "80", "settle:1:bank-c:USD"],
        ["1", "closed", "bank-d", "EUR", "77", "0", "-77", "77", "", "settle:1:bank-d:EUR"]]
    nets = {}
    for row in rows[1:]:
        nets[row[3]] = nets.get(row[3], 0) + int(row[6])
    assert nets == {"USD": 0, "EUR": 0}

    code, out, _ = cli(switch, "window", "report", "1")
    assert code == 0 and "positions" in out and "instructions" in out
    assert [line.split() for line in out.splitlines() if line.startswith("bank-c ")] == [
        ["bank-c", "USD", "40", "120", "80"],
        ["bank-c", "USD", "-", "80", "settle:1:bank-c:USD"]]
    code, out, _ = cli(switch, "--json", "window", "report", "1")
    assert code == 0 and json.loads(out) == report


def test_matrix_output(switch, admin, tmp_path):
    create_settlement_world(admin)
    traffic(admin)
    code, out, err = cli(switch, "window", "matrix", "1")
    assert code == 0, err
    lines = [line.split() for line in out.splitlines()]
    assert lines[0][:3] == ["window", "1", "(open):"]
    usd = lines[lines.index(["USD", "payer\\payee", "bank-a", "bank-b", "bank-c", "total"]):]
    assert usd[1:5] == [["bank-a", "-", "525", "0", "525"],
                        ["bank-b", "0", "-", "120", "120"],
                        ["bank-c", "40", "0", "-", "40"],
                        ["total", "40", "525", "120", "685"]]
    assert ["EUR", "payer\\payee", "bank-a", "total"] in lines
    assert ["bank-d", "77", "77"] in lines

    target = tmp_path / "m.csv"
    assert cli(switch, "window", "matrix", "1", "--format", "csv", "--output", str(target))[0] \
        == 0
    assert target.read_text().splitlines() == [
        "window_id,payer,payee,currency,amount", "1,bank-a,bank-b,USD,525",
        "1,bank-b,bank-c,USD,120", "1,bank-c,bank-a,USD,40", "1,bank-d,bank-a,EUR,77"]
    code, out, _ = cli(switch, "window", "matrix", "1", "--format", "json")
    assert json.loads(out) == ok(admin, "get_window_matrix", {"window_id": 1})

    code, out, err = cli(switch, "window", "matrix", "9")
    assert code == 1 and "window_not_found" in err
    code, out, err = cli(switch, "window", "report", "0")
    assert code == 2  # usage: window ids start at 1


def test_close_window_refusal_and_settlement_accounts(switch, admin):
    create_settlement_world(admin)
    traffic(admin)
    code, out, err = cli(switch, "close-window", "--settle", "USD=hub-usd")
    assert code == 1 and "error: account_not_found: no hub settlement account given for EUR" \
        in err
    code, out, err = cli(switch, "set-participant", "bank-d", "--settlement-account",
                         "EUR=none")
    assert code == 0, err
    assert ok(admin, "set_participant", {"id": "bank-d"})["settlement_accounts"] == \
        {"USD": "bank-d-settle"}
    code, _, err = cli(switch, "close-window", "--settle", "USD=hub-usd", "--settle",
                       "EUR=hub-eur")
    assert code == 1 and "bank-d has no EUR settlement account" in err
    code, _, err = cli(switch, "set-participant", "bank-d", "--settlement-account",
                       "EUR=bank-a-eur")
    assert code == 1 and "forbidden" in err
    assert cli(switch, "set-participant", "bank-d", "--settlement-account",
               "EUR=bank-d-settle-eur")[0] == 0
    code, out, err = cli(switch, "close-window", "--settle", "USD=hub-usd", "--settle",
                         "EUR=hub-eur")
    assert code == 0, err
    code, out, _ = cli(switch, "windows")
    assert code == 0
    assert [line.split()[:2] for line in out.splitlines()[1:]] == [["1", "closed"],
                                                                   ["2", "open"]]
    code, out, _ = cli(switch, "close-window")
    assert code == 0 and "settlement  not posted" in out
