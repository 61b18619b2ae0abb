"""CSV batch files, parsed from real bytes: items, every problem with its line, a 1M-row file."""

import csv
import io
import time

from payswitch.protocol.batch_files import BatchProblem, parse_batch, results_csv
from payswitch.protocol.batch_files.parsed import MAX_PROBLEMS

HEADER = "id,debit_account,credit_account,amount,currency,reference\r\n"


def parse(text: str, **kwargs):
    return parse_batch("csv", text.encode("utf-8"), None, **kwargs)


def problems_of(text: str) -> dict:
    result = parse(text)
    return {problem.where: problem.reason for problem in result.errors}


def test_rows_become_normalized_one_phase_transfers():
    result = parse(HEADER + 't-1,acc-a,acc-b,1050,EUR,"Invoice 7, May"\r\n'
                   "t-2,acc-b,acc-a,1,,\r\n")
    assert result.errors == []
    assert result.items == [
        {"id": "t-1", "debit_account": "acc-a", "credit_account": "acc-b", "amount": 1050,
         "currency": "EUR", "reference": "Invoice 7, May", "pending": False, "timeout": 0,
         "post_pending_id": None, "void_pending_id": None, "linked": False},
        {"id": "t-2", "debit_account": "acc-b", "credit_account": "acc-a", "amount": 1,
         "currency": None, "reference": None, "pending": False, "timeout": 0,
         "post_pending_id": None, "void_pending_id": None, "linked": False},
    ]
    assert result.control == {"count": 2, "sum": 1051}
    assert result.meta == {}


def test_bom_and_bare_newlines_are_accepted():
    content = b"\xef\xbb\xbf" + HEADER.replace("\r\n", "\n").encode() + b"t-1,a,b,5,USD,caf\xc3\xa9\n"
    result = parse_batch("csv", content, None)
    assert result.errors == []
    assert result.items[0]["reference"] == "café"


def test_header_only_is_an_empty_batch():
    result = parse(HEADER)
    assert (result.items, result.errors, result.control) == ([], [], {"count": 0, "sum": 0})


def test_wrong_or_missing_header_is_a_problem_on_line_1():
    for text in ("", "id,debit,credit,amount,currency,reference\n",
                 "ID,debit_account,credit_account,amount,currency,reference\n",
                 "id,debit_account,credit_account,amount,currency\n"):
        result = parse(text)
        assert [problem.where for problem in result.errors] == ["line 1"], text
        assert "header must be exactly" in result.errors[0].reason


def test_every_amount_that_is_not_plain_digits_is_named_with_its_line():
    bad = ["10.50", "-5", "+5", " 5", "5 ", "1e3", "", "0x10", "١٢"]
    rows = "".join(f"t-{n},a,b,{amount},EUR,\n" for n, amount in enumerate(bad))
    found = problems_of(HEADER + "ok-1,a,b,7,EUR,\n" + rows)
    assert sorted(found) == sorted(f"line {n + 3}" for n in range(len(bad)))
    assert all(reason.startswith("amount ") for reason in found.values())


def test_zero_and_huge_amounts_are_items_with_invalid_amount_for_the_ledger():
    result = parse(HEADER + "t-1,a,b,0,EUR,\nt-2,a,b,9223372036854775808,EUR,\n"
                   "t-3,a,b,000000000000000000000000000042,EUR,\nt-4,a,b," + "9" * 5000 + ",EUR,\n")
    assert result.errors == []
    assert [item["amount"] for item in result.items] == [0, 0, 42, 0]
    assert result.control == {"count": 4, "sum": 42}


def test_field_problems_name_their_lines():
    found = problems_of(
        HEADER
        + "good,a,b,1,EUR,\n"  # line 2
        + "bad id,a,b,1,EUR,\n"  # 3
        + "t-4,,b,1,EUR,\n"  # 4
        + "t-5,a,b/c,1,EUR,\n"  # 5
        + "t-6,a,b,1,eur,\n"  # 6
        + "t-7,a,b,1,EUR,x,extra\n"  # 7
        + "t-8,a,b,1\n"  # 8
        + "\n"  # 9: blank line
        + f"t-10,a,b,1,EUR,{'r' * 257}\n"  # 10
        + "t-11,a,b,1,EURO,\n"  # 11
    )
    assert sorted(found) == [f"line {n}" for n in (10, 11, 3, 4, 5, 6, 7, 8, 9)]
    assert found["line 3"].startswith("id must be")
    assert found["line 4"].startswith("debit_account must be")
    assert found["line 5"].startswith("credit_account must be")
    assert found["line 6"] == "currency 'eur' must be a currency code of 3 uppercase letters"
    assert found["line 7"] == "expected 6 fields, found 7"
    assert found["line 8"] == "expected 6 fields, found 4"
    assert found["line 9"] == "expected 6 fields, found 0"
    assert found["line 10"].startswith("reference must be")
    assert found["line 11"] == "currency 'EURO' must be a currency code of 3 uppercase letters"


def test_quoted_newlines_keep_line_numbers_physical():
    found = problems_of(HEADER + 't-1,a,b,1,EUR,"two\nlines"\nt-2,a,b,x,EUR,\n')
    assert list(found) == ["line 4"]


def test_malformed_quoting_and_bad_utf8_are_problems_not_exceptions():
    assert list(problems_of(HEADER + 'ok,a,b,1,EUR,\nt-1,a,b,1,EUR,"open\n')) == ["line 3"]
    content = (HEADER + "t-1,a,b,1,EUR,\nt-2,a,b,1,EUR,caf").encode() + b"\xe9\n"
    result = parse_batch("csv", content, None)
    assert result.errors == [BatchProblem("line 3", "not valid UTF-8")]


def test_problems_are_capped_with_a_count_of_the_rest():
    result = parse(HEADER + "".join(f"t-{n},a,b,x,EUR,\n" for n in range(250)))
    assert len(result.errors) == MAX_PROBLEMS + 1
    assert result.errors[0].where == "line 2"
    assert result.errors[-1] == BatchProblem("batch", f"... and {250 - MAX_PROBLEMS} more problems")


def test_more_rows_than_max_items_is_a_problem():
    result = parse(HEADER + "".join(f"t-{n},a,b,1,EUR,\n" for n in range(4)), max_items=3)
    assert result.errors == [BatchProblem("line 5", "more than 3 items")]


def test_results_csv_round_trips_through_the_csv_module():
    rows = [(0, "t-1", "created"), (1, "t,2", "insufficient_funds"), (2, "t-3", "exists")]
    data = results_csv(rows)
    assert data.startswith(b"index,id,status\r\n")
    parsed = list(csv.reader(io.StringIO(data.decode("utf-8"))))
    assert parsed == [["index", "id", "status"]] + [[str(i), tid, status] for i, tid, status in rows]


def test_a_million_rows_parse_in_seconds():
    count = 1_000_000
    lines = (f"tr-{n:07d},acc-{n % 997},acc-{(n + 1) % 997},{n % 50000 + 1},EUR,inv {n}\n"
             for n in range(count))
    content = (HEADER + "".join(lines)).encode("ascii")
    started = time.perf_counter()
    result = parse_batch("csv", content, None)
    elapsed = time.perf_counter() - started
    print(f"\nCSV: {count} rows ({len(content) / 1e6:.0f} MB) in {elapsed:.2f} s"
          f" = {count / elapsed:,.0f} rows/s")
    assert result.errors == []
    assert result.control == {"count": count, "sum": sum(n % 50000 + 1 for n in range(count))}
    assert result.items[-1]["id"] == f"tr-{count - 1:07d}"
