"""The `modular-robot` command: `up` a stack, `run` scenarios, `eval` a suite, `chat` with the robot."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import yaml

from modular_robot.core.stack import DDS_PROFILE_VARIABLE
from modular_robot.harness.replay import add_replay_arguments
from modular_robot.harness.stack_runner import node_environment
from modular_robot.paths import resolve_data_path
from modular_robot.planning.chat_format import add_chat_arguments

DEFAULT_STACK = "config/stacks/sim_tabletop.yaml"
_RENDERER_HELP = "camera renderer: auto (EGL when it loads, else TinyRenderer), egl or tiny (default: %(default)s)"


def _ensure_environment() -> None:
    """Re-execute with ./install on the library path and our Fast DDS profile, unless both are set.

    The dynamic linker reads the library path only at start, and Fast DDS its profile when the
    first participant is created: every subcommand, and every node process `up` starts, then has both.
    """
    env = node_environment()
    if any(env.get(key) != os.environ.get(key)
           for key in ("LD_LIBRARY_PATH", "PYTHONPATH", DDS_PROFILE_VARIABLE)):
        os.execve(sys.executable, [sys.executable, "-m", "modular_robot.cli", *sys.argv[1:]], env)


def _overrides(pairs: list[str]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        node, dot, param = key.partition(".")
        if not sep or not dot:
            raise SystemExit(f"-p expects NODE.PARAM=VALUE, got {pair!r}")
        out.setdefault(node, {})[param] = yaml.safe_load(value)
    return out


def cmd_up(args) -> int:
    from modular_robot.core.stack import StackError, load_stack
    from modular_robot.harness.stack_runner import run_in_process, run_processes

    try:
        stack = load_stack(args.stack, _overrides(args.param), args.namespace)
    except StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    names = ", ".join(f"{n.namespace.rstrip('/')}/{n.name}" for n in stack.nodes)
    print(f"[up] stack '{stack.name}': {names}", flush=True)
    return run_in_process(stack) if args.in_process else run_processes(stack)


def stack_for_run(scenario, override: str | None = None) -> Path:
    """Return the stack file that drives `scenario` in `run`: `override`, else eval's stack for its robot.

    Raises:
        FileNotFoundError: the robot kind's stack file is missing.
    """
    from modular_robot.harness.evaluation import stack_for

    return Path(override) if override is not None else resolve_data_path(stack_for(scenario))


def cmd_run(args) -> int:
    from modular_robot.core.stack import StackError, load_stack
    from modular_robot.harness.runner import run_scenario, write_results
    from modular_robot.scenarios.scenario import ScenarioError, load_scenario

    try:
        scenarios = [load_scenario(path) for path in args.scenarios]
        stacks = [load_stack(stack_for_run(scenario, args.stack)) for scenario in scenarios]
    except (ScenarioError, StackError, FileNotFoundError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    out = Path(args.out)
    results = []
    for scenario, stack in zip(scenarios, stacks):
        folder = out / scenario.name if len(scenarios) > 1 else out
        results.append(run_scenario(scenario, folder, stack, renderer=args.renderer, record=not args.no_record))
    write_results(results, out / "results.json")
    passed = sum(r.passed for r in results)
    print(f"{passed}/{len(results)} scenarios passed; report in {out}/")
    print("PASS" if passed == len(results) else "FAIL")
    return 0 if passed == len(results) else 1


def cmd_eval(args) -> int:
    from modular_robot.harness.evaluation import run_eval

    return run_eval(args.paths, args.out, args.stack, args.jobs, args.allow_fail, args.renderer,
                    record=not args.no_record, name_filter=args.filter, category=args.category)


def cmd_replay(args) -> int:
    from modular_robot.harness.replay import run_replay

    return run_replay(args)


def cmd_chat(args) -> int:
    from modular_robot.nodes.chat_node import run_chat

    return run_chat(args.once, args.namespace, args.server_timeout)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser of the `modular-robot` command."""
    parser = argparse.ArgumentParser(prog="modular-robot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="run a stack's nodes (a process each, or --in-process) until Ctrl-C")
    up.add_argument("stack", nargs="?", default=DEFAULT_STACK, help="stack YAML (default: %(default)s)")
    up.add_argument("--in-process", action="store_true", help="run all nodes on one executor")
    up.add_argument("--namespace", default=None, help="push every node into this namespace")
    up.add_argument("-p", "--param", action="append", default=[], metavar="NODE.PARAM=VALUE",
                    help="override a node parameter (YAML value)")
    up.set_defaults(func=cmd_up)
    run = sub.add_parser("run", help="run scenarios in lockstep and judge them on ground truth")
    run.add_argument("scenarios", nargs="+", help="scenario YAML files")
    run.add_argument("--out", default="reports/run", help="report folder (default: %(default)s)")
    run.add_argument("--stack", default=None,
                     help="stack YAML whose non-sim nodes join the episode "
                          "(default: per robot type, from config/stacks/, as eval picks it)")
    run.add_argument("--renderer", default="auto", choices=("auto", "egl", "tiny"), help=_RENDERER_HELP)
    run.add_argument("--no-record", action="store_true", help="do not record the episode to <out>/episode.mcap")
    run.set_defaults(func=cmd_run)
    evaluate = sub.add_parser("eval", help="run a suite of scenarios (all validated first) and write a report")
    evaluate.add_argument("paths", nargs="+", metavar="DIR_OR_FILE",
                          help="scenario directories (every *.yaml) and files")
    evaluate.add_argument("--out", default="reports/eval", help="report folder (default: %(default)s)")
    evaluate.add_argument("--stack", default=None,
                          help="stack YAML for every scenario (default: per robot type, from config/stacks/)")
    evaluate.add_argument("--jobs", type=int, default=1, help="scenarios run in this many processes")
    evaluate.add_argument("--allow-fail", action="store_true", help="exit 0 even when scenarios fail")
    evaluate.add_argument("--renderer", default="auto", choices=("auto", "egl", "tiny"), help=_RENDERER_HELP)
    evaluate.add_argument("--no-record", action="store_true", help="do not record episodes to MCAP")
    evaluate.add_argument("--filter", default=None, metavar="SUBSTRING",
                          help="run only scenarios whose name contains this")
    evaluate.add_argument("--category", default=None, metavar="NAME", help="run only scenarios of this category")
    evaluate.set_defaults(func=cmd_eval)
    replay = sub.add_parser("replay", help="publish a recorded episode (MCAP) onto ROS topics with its timing")
    add_replay_arguments(replay).set_defaults(func=cmd_replay)
    chat = sub.add_parser("chat", help="give the robot instructions through the task planner (Ctrl-C cancels a task)")
    add_chat_arguments(chat).set_defaults(func=cmd_chat)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of `modular-robot`."""
    args = build_parser().parse_args(argv)
    _ensure_environment()
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
