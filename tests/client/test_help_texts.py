"""Every command line (`switch`, the operator CLI, the load generator) documents itself: each
argument of each parser, subcommands included, has a description, and `--help` shows every
option's default. Written over all actions, so options added later are held to it too."""

import argparse

import pytest

from payswitch.client.cli import build_parser as client_parser
from payswitch.loadtest.config import build_parser as loadtest_parser
from payswitch.switch.cli import build_parser as switch_parser


def walk(parser: argparse.ArgumentParser, path: str):
    """(command path, parser, action) for every argument of `parser` and its subcommands."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            described = {choice.dest: choice.help for choice in action._choices_actions}
            for name, subparser in action.choices.items():
                yield path, parser, _Subcommand(name, described.get(name))
                yield from walk(subparser, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, parser, action


class _Subcommand:
    """A subcommand seen as an argument of its parent: it needs a description too."""

    def __init__(self, name: str, help_text: str | None):
        self.option_strings, self.dest, self.help, self.default = [], name, help_text, None


def shows_default(action) -> bool:
    default = action.default
    return not (default is None or default is argparse.SUPPRESS or isinstance(default, bool)
                or default == [])


PARSERS = {"python -m switch": switch_parser, "python -m client": client_parser,
           "python -m loadtest": loadtest_parser}
ARGUMENTS = [(path, parser, action) for name, build in PARSERS.items()
             for path, parser, action in walk(build(), name)]


def name_of(action) -> str:
    return "/".join(action.option_strings) or action.dest


@pytest.mark.parametrize("path, parser, action", ARGUMENTS,
                         ids=[f"{p} {name_of(a)}" for p, _, a in ARGUMENTS])
def test_every_argument_is_described_and_shows_its_default(path, parser, action):
    assert action.help and action.help != argparse.SUPPRESS and action.help.strip(), \
        f"{path} {name_of(action)} has no help"
    if isinstance(action, _Subcommand) or not shows_default(action):
        return
    shown = parser._get_formatter()._expand_help(action)
    assert "default: " in shown, f"{path} {name_of(action)}: help does not show its default"


def test_the_walk_reaches_subcommands_and_their_options():
    """The walk is not vacuous: nested subcommands and their options are in it."""
    seen = {(path, name_of(action)) for path, _, action in ARGUMENTS}
    assert ("python -m switch serve", "--max-frame-bytes") in seen
    assert ("python -m switch wal repair", "--yes") in seen
    assert ("python -m client batch results", "--format") in seen
    assert ("python -m client window report", "window_id") in seen
    assert ("python -m loadtest", "--mix") in seen
    assert len(ARGUMENTS) > 140


@pytest.mark.parametrize("argv, expected", [
    (["serve", "--help"], "(default: 1048576)"),  # --max-frame-bytes
    (["serve", "--help"], "(default: fsync)"),
])
def test_switch_serve_help_prints_defaults(argv, expected, capsys):
    with pytest.raises(SystemExit):
        switch_parser().parse_args(argv)
    assert expected in capsys.readouterr().out


def test_client_and_loadtest_help_print_defaults(capsys):
    with pytest.raises(SystemExit):
        client_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "(default: 10.0)" in out and "(default: 127.0.0.1)" in out
    with pytest.raises(SystemExit):
        client_parser().parse_args(["ping", "--help"])
    assert "(default: 1)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        loadtest_parser().parse_args(["--help"])
    out = capsys.readouterr().out
    assert "(default: 16)" in out and "(default: 0.0)" in out  # --connections, --warmup
