"""`batch results --format pain.002` of a batch that is not a pain.001 says what to ask for
instead, against a real switch (which reports each batch's format in `get_batch`)."""
import pytest

from batches.batch_e2e_support import Session, csv_file
from batches.test_batch_cli import ROWS, cli


@pytest.mark.parametrize("with_file", [False, True], ids=["no-file", "csv-as-file"])
def test_pain002_of_a_csv_batch_names_its_format_and_what_to_ask_instead(world, capsys,
                                                                          tmp_path, with_file):
    switch, tokens = world
    path = tmp_path / "payments.csv"
    path.write_bytes(csv_file(ROWS[:2]))
    code, _, err = cli(world, capsys, "batch", "submit", str(path), "--batch-id", "csv-b",
                       "--wait")
    assert code == 0, err
    with Session(switch, "bank-a", tokens["bank-a"]) as bank:
        assert bank.get("csv-b")["format"] == "csv"
    extra = ["--file", str(path)] if with_file else []
    with pytest.raises(SystemExit) as exit_info:
        cli(world, capsys, "batch", "results", "csv-b", "--format", "pain.002", *extra)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert err == ("error: batch csv-b was submitted as csv: a pain.002 status report answers a "
                   "pain.001 batch only; ask for its results as CSV instead: batch results "
                   "csv-b --format csv\n")
    # What it says to ask for works.
    code, out, err = cli(world, capsys, "batch", "results", "csv-b", "--format", "csv")
    assert code == 0, err
    assert out.splitlines()[0] == "index,id,status"
