"""Command-line options: defaults, parsing of mix and amounts, and the rules across options."""

import pytest

from payswitch.loadtest.config import parse_args, parse_mix


def test_defaults():
    config = parse_args([])
    assert (config.connections, config.pipeline, config.batch_size, config.processes) == \
        (16, 1, 1, 1)
    assert (config.duration_s, config.count, config.rate_per_s, config.open_loop) == \
        (10.0, None, None, False)
    assert (config.participants, config.accounts, config.codec) == (4, 100, "msgpack")
    assert config.mix == {"single": 100.0, "two_phase": 0.0, "lookup": 0.0}
    assert (config.amount_min, config.amount_max) == (1, 10_000)
    assert config.verify and config.verify_sample == 1000


def test_shapes_and_report_withholds_the_token():
    config = parse_args(["--rate", "500", "--count", "100", "--mix",
                         "single=80,two_phase=10,lookup=10", "--amount", "5-9", "--token",
                         "secret", "--seed", "3", "--skew", "zipf", "--zipf-s", "1.3"])
    assert config.open_loop and config.rate_per_s == 500.0 and config.duration_s is None
    assert config.mix == {"single": 80.0, "two_phase": 10.0, "lookup": 10.0}
    assert (config.amount_min, config.amount_max, config.seed) == (5, 9, 3)
    report = config.for_report()
    assert report["token"] == "(given)" and "secret" not in str(report)
    assert parse_args(["--amount", "250"]).amount_min == 250


@pytest.mark.parametrize("argv", [
    ["--mix", "single=1,bogus=2"], ["--mix", "single=0"], ["--mix", "single=-1"],
    ["--amount", "0-5"], ["--amount", "9-5"], ["--batch-size", "8191"],
    ["--duration", "1", "--count", "5"], ["--connections", "2", "--processes", "3"],
    ["--participants", "1"], ["--accounts", "1", "--interbank", "0.5"],
    ["--interbank", "1.5"], ["--rate", "0"], ["--reuse", "bad prefix!"],
])
def test_refused(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2
    assert "error" in capsys.readouterr().err


def test_one_participant_is_fine_for_on_us_only():
    assert parse_args(["--participants", "1", "--interbank", "0"]).participants == 1
    assert parse_mix("lookup=1")["lookup"] == 1.0


def test_hosts_and_retry_deadline():
    config = parse_args([])
    assert config.hosts == (("127.0.0.1", None),) and config.retry_deadline_s == 10.0
    config = parse_args(["--host", "n1:7001,n2", "--host", "[::1]:7003", "--retry-deadline", "0"])
    assert config.hosts == (("n1", 7001), ("n2", None), ("::1", 7003))
    assert config.retry_deadline_s == 0
    assert config.for_report()["hosts"] == ["n1:7001", "n2", "[::1]:7003"]


@pytest.mark.parametrize("argv", [["--host", "n1:"], ["--host", "n1,,n2"],
                                  ["--retry-deadline", "-1"]])
def test_refused_hosts_and_retry_deadlines(argv, capsys):
    with pytest.raises(SystemExit) as exit_info:
        parse_args(argv)
    assert exit_info.value.code == 2 and "error" in capsys.readouterr().err
