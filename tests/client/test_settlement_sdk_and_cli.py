"""SDK and CLI additions for settlement: wire arguments, parsing of matrix and settlement fields,
and the CLI's renderings (report CSV, matrix tables) as pure functions."""

import pytest

from payswitch.client import AsyncClient, Client, MatrixRow, Window, WindowMatrix
from payswitch.client.cli import build_parser
from payswitch.client.commands import matrix_csv, matrix_tables, report_csv
from payswitch.protocol import ok_reply

REPORT = {"window_id": 4, "state": "closed", "opened_at": 1, "closed_at": 2, "transfers": 3,
          "positions": [
              {"participant": "a", "currency": "USD", "debits": 50, "credits": 0, "net": -50},
              {"participant": "b", "currency": "USD", "debits": 10, "credits": 10, "net": 0},
              {"participant": "c", "currency": "USD", "debits": 0, "credits": 50, "net": 50}],
          "instructions": [{"participant": "a", "currency": "USD", "pay": 50},
                           {"participant": "c", "currency": "USD", "receive": 50}],
          "settlement_transfers": ["settle:4:a:USD", "settle:4:c:USD"]}
MATRIX = {"window_id": 4, "state": "closed", "rows": [
    {"payer": "a", "payee": "b", "currency": "USD", "amount": 40},
    {"payer": "a", "payee": "c", "currency": "USD", "amount": 10},
    {"payer": "b", "payee": "c", "currency": "USD", "amount": 10},
    {"payer": "c", "payee": "a", "currency": "EUR", "amount": 3}]}


async def connect(peer) -> AsyncClient:
    return await AsyncClient.connect(port=peer.port, token="t", backoff_s=0.001)


async def test_close_window_with_hub_accounts_sends_settle(peer):
    peer.on("close_window", lambda r: ok_reply(r["id"], REPORT))
    async with await connect(peer) as client:
        plain = await client.close_window()
        settled = await client.close_window(hub_accounts={"USD": "hub-usd"})
    first, second = peer.ops("close_window")
    assert first["args"] == {}
    assert second["args"] == {"settle": {"hub_accounts": {"USD": "hub-usd"}}}
    assert settled == plain and settled.settlement_transfers == ("settle:4:a:USD",
                                                                 "settle:4:c:USD")


async def test_a_report_without_settlement_field_parses_as_none(peer):
    report = {k: v for k, v in REPORT.items() if k != "settlement_transfers"}
    peer.on("get_window", lambda r: ok_reply(r["id"], report))
    async with await connect(peer) as client:
        window = await client.get_window(4)
    assert window.settlement_transfers is None and window.transfers == 3


async def test_get_window_matrix_is_parsed_and_retried(peer):
    calls = []

    def answer(request):
        calls.append(request)
        return "close" if len(calls) == 1 else ok_reply(request["id"], MATRIX)
    peer.on("get_window_matrix", answer)
    async with await connect(peer) as client:
        matrix = await client.get_window_matrix(4)
    assert [c["args"] for c in calls] == [{"window_id": 4}] * 2  # a read: resent safely
    assert matrix == WindowMatrix(4, "closed", (
        MatrixRow("a", "b", "USD", 40), MatrixRow("a", "c", "USD", 10),
        MatrixRow("b", "c", "USD", 10), MatrixRow("c", "a", "EUR", 3)))


async def test_set_participant_settlement_accounts(peer):
    peer.on("set_participant", lambda r: ok_reply(r["id"], {"id": "a"}))
    async with await connect(peer) as client:
        await client.set_participant("a", settlement_accounts={"USD": "a-s", "EUR": None})
    assert peer.ops("set_participant")[0]["args"] == {
        "id": "a", "settlement_accounts": {"USD": "a-s", "EUR": None}}


def test_the_blocking_client_has_the_new_method(thread_peer):
    thread_peer.on("get_window_matrix", lambda r: ok_reply(r["id"], MATRIX))
    with Client(port=thread_peer.port, token="t") as client:
        assert len(client.get_window_matrix(4).rows) == 4


def test_cli_arguments():
    parser = build_parser()
    args = parser.parse_args(["window", "report", "3", "--format", "csv", "--output", "x.csv"])
    assert (args.window_id, args.format, args.output) == (3, "csv", "x.csv")
    assert parser.parse_args(["window", "matrix", "2"]).format == "table"
    args = parser.parse_args(["close-window", "--settle", "USD=hub", "--settle", "EUR=hub-e"])
    assert args.settle == [("USD", "hub"), ("EUR", "hub-e")]
    assert parser.parse_args(["close-window"]).settle == []
    args = parser.parse_args(["set-participant", "a", "--settlement-account", "USD=a-s",
                              "--settlement-account", "EUR=none"])
    assert args.settlement_accounts == [("USD", "a-s"), ("EUR", None)]
    for bad in (["window", "report", "0"], ["window", "report", "x"], ["window", "tally", "1"],
                ["close-window", "--settle", "USD"], ["close-window", "--settle", "=hub"],
                ["window", "report", "1", "--format", "xml"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)


def test_report_csv_has_a_header_and_a_row_per_position():
    text = report_csv(Window.from_wire(REPORT))
    assert text.splitlines() == [
        "window_id,state,participant,currency,debits,credits,net,pay,receive,settlement_transfer",
        "4,closed,a,USD,50,0,-50,50,,settle:4:a:USD",
        "4,closed,b,USD,10,10,0,,,",
        "4,closed,c,USD,0,50,50,,50,settle:4:c:USD"]


def test_matrix_tables_per_currency_with_totals():
    text = matrix_tables(WindowMatrix.from_wire(MATRIX))
    blocks = text.split("\n\n")
    assert blocks[0] == "window 4 (closed): bilateral gross amounts, payer (row) -> payee (column)"
    assert [line.split() for line in blocks[1].splitlines()] == [
        ["EUR", "payer\\payee", "a", "total"], ["c", "3", "3"], ["total", "3", "3"]]
    assert [line.split() for line in blocks[2].splitlines()] == [
        ["USD", "payer\\payee", "b", "c", "total"],  # columns: those paid in USD
        ["a", "40", "10", "50"],
        ["b", "-", "10", "10"],
        ["total", "40", "20", "60"]]
    empty = matrix_tables(WindowMatrix(5, "open", ()))
    assert empty == "window 5 (open): no interbank transfers"
    assert matrix_csv(WindowMatrix.from_wire(MATRIX)).splitlines()[1] == "4,a,b,USD,40"
