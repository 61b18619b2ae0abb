"""`--help` that shows every option's default: the parser of every command line here (the switch,
the operator CLI, the load generator). It lives in `protocol`, the one package all three may
import, so that the client never needs the server installed."""
import argparse
import sys
from pathlib import Path
from typing import Any


class DefaultsHelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Appends "(default: X)" to an option's help, unless its help already says "default: ..." or
    there is none worth showing (None: unset; a flag's False; an empty list to append to)."""

    def _get_help_string(self, action: argparse.Action) -> str:
        help_text = action.help or ""
        default = action.default
        if (default is None or default is argparse.SUPPRESS or isinstance(default, bool)
                or default == [] or "default:" in help_text):
            return help_text
        return super()._get_help_string(action) or ""


class ArgumentParser(argparse.ArgumentParser):
    """An ArgumentParser with DefaultsHelpFormatter; subcommands' parsers are of this class too
    (argparse gives them the class of their parent, but not its formatter)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("formatter_class", DefaultsHelpFormatter)
        super().__init__(*args, **kwargs)


def program_name(script: str, module: str) -> str:
    """How the user ran the command, for usage lines: the installed script (`payswitch-cli`) or
    `python -m MODULE` from a checkout."""
    return script if Path(sys.argv[0]).name == script else f"python -m {module}"


def comma_list(text: str) -> tuple[str, ...]:
    """An argparse type: comma-separated values (blanks around them and empty ones dropped)."""
    return tuple(value.strip() for value in text.split(",") if value.strip())
