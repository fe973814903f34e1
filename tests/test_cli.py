"""The `modular-robot` command line: every flag documented."""

import argparse

from modular_robot.cli import build_parser


def test_every_flag_of_every_subcommand_has_help():
    subcommands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    missing = [f"{name} {'/'.join(action.option_strings) or action.dest}"
               for name, parser in subcommands.choices.items() for action in parser._actions
               if not action.help or action.help == argparse.SUPPRESS]
    assert not missing, f"flags without help: {missing}"
    assert {"up", "run", "eval", "replay", "chat"} <= set(subcommands.choices)
