"""What the chat shows: plan and status lines from task feedback, the robot's replies, exit codes.

Pure text handling behind the chat node (no ROS): everything the planner sends is cleaned before
it reaches the terminal, and nothing it sends (empty, repeated, multi-line, escape sequences) can
make the chat fail.
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass

PROMPT = "you> "
ROBOT_PREFIX = "robot> "
PLAN_PREFIX = "  | "
STATUS_PREFIX = "  ... "
QUIT_WORDS = frozenset({"quit", "exit"})
CANCELLED = "cancelled"
DEFAULT_SERVER_TIMEOUT_S = 10.0

# Exit codes of `chat --once`.
EXIT_SUCCEEDED = 0
EXIT_FAILED = 1
EXIT_NO_SERVER = 2
# A namespace that is not one, as argparse exits for bad options.
EXIT_USAGE = 2

# Control characters other than newline and tab: a plan written by a language model must not be
# able to move the cursor, clear the screen or retitle the terminal.
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def clean_text(text: object) -> str:
    """Return `text` safe to print: control characters dropped, trailing blanks and lines stripped.

    Args:
        text: What a message field held; anything that is not a string counts as empty.

    Returns:
        The cleaned text, possibly empty.
    """
    if not isinstance(text, str):
        return ""
    text = _CONTROL.sub("", text.replace("\r\n", "\n").replace("\r", "\n")).replace("\t", "    ")
    return "\n".join(line.rstrip() for line in text.split("\n")).strip("\n")


def one_line(text: object) -> str:
    """Return `text` cleaned and folded onto one line, its runs of white space made single spaces."""
    return " ".join(clean_text(text).split())


def parse_line(line: str) -> str | None:
    """Return the instruction typed at the prompt, folded onto one line, or None for a blank line."""
    return one_line(line) or None


def is_quit(text: str) -> bool:
    """Return whether a typed instruction is a word that ends the chat ("quit", "exit")."""
    return text.strip().lower() in QUIT_WORDS


class FeedbackView:
    """Turn a task's feedback into the lines worth printing: the plan when it changes, new statuses."""

    def __init__(self) -> None:
        self.plan = ""
        self.status = ""

    def update(self, plan: object, status: object) -> list[str]:
        """Take one feedback message's plan and status; return the lines to print, maybe none.

        Args:
            plan: The feedback's plan text. Empty means "no plan yet" and keeps the last one.
            status: The feedback's status line. Empty or unchanged prints nothing.

        Returns:
            The plan's lines (when its text changed), then the status line (when it changed).
        """
        lines = []
        plan_text = clean_text(plan)
        if plan_text and plan_text != self.plan:
            self.plan = plan_text
            lines += [PLAN_PREFIX + line for line in plan_text.split("\n")]
        status_text = one_line(status)
        if status_text and status_text != self.status:
            self.status = status_text
            lines.append(STATUS_PREFIX + status_text)
        return lines


@dataclass(frozen=True)
class Reply:
    """The robot's answer to one instruction.

    Attributes:
        text: What the robot says, as published on chat/robot.
        exit_code: EXIT_SUCCEEDED or EXIT_FAILED, for `--once`.
        mark: Shown before the text when the task did not succeed ("failed", "refused"), or "".
    """

    text: str
    exit_code: int
    mark: str = ""

    @property
    def line(self) -> str:
        """Return the reply as printed: `robot> [mark] text`, continuation lines aligned under the text."""
        head = ROBOT_PREFIX + (f"[{self.mark}] " if self.mark else "")
        return head + self.text.replace("\n", "\n" + " " * len(ROBOT_PREFIX))


def result_reply(success: bool, summary: object) -> Reply:
    """Return the reply for a finished task.

    Args:
        success: Whether the goal succeeded and its result says so.
        summary: The result's summary (may be empty).

    Returns:
        The summary, marked "failed" unless the task succeeded.
    """
    text = clean_text(summary) or ("done" if success else "the task failed without saying why")
    return Reply(text, EXIT_SUCCEEDED) if success else Reply(text, EXIT_FAILED, "failed")


def refused_reply() -> Reply:
    """Return the reply for a goal the task planner did not accept."""
    return Reply("the task planner refused the instruction", EXIT_FAILED, "refused")


# The reply to Ctrl-C once the planner accepted the cancel (or before anything was sent).
CANCELLED_REPLY = Reply(CANCELLED, EXIT_FAILED)

# action_msgs/srv/CancelGoal return codes.
CANCEL_ACCEPTED, CANCEL_REJECTED, CANCEL_UNKNOWN_GOAL, CANCEL_GOAL_TERMINATED = 0, 1, 2, 3


def cancel_reply(return_code: int | None, wait_s: float) -> Reply:
    """Return the reply after Ctrl-C asked the task planner to cancel the running task.

    Args:
        return_code: The cancel response's return code, or None when no answer came in time.
        wait_s: How long the chat waited for that answer.

    Returns:
        "cancelled" when the planner accepted; otherwise what is known, so the user is not told a
        task stopped when it may still be moving the robot.
    """
    if return_code == CANCEL_ACCEPTED:
        return CANCELLED_REPLY
    if return_code is None:
        note = f"the task planner did not confirm within {wait_s:g} s; the task may still be running"
    elif return_code == CANCEL_REJECTED:
        note = "the task planner refused to cancel; the task is still running"
    else:
        note = "the task had already ended"
    return Reply(f"cancel requested, but {note}", EXIT_FAILED, "not confirmed")


def no_server_message(action_name: str, timeout_s: float) -> str:
    """Return the error printed when no planner serves the action.

    Args:
        action_name: The action's fully resolved name (namespace included).
        timeout_s: How long the chat waited.
    """
    return f"error: no task planner is serving 'execute_task' ({action_name}) after {timeout_s:g} s"


def add_chat_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the chat's options to `parser` (shared by `modular-robot chat` and `ros2 run modular_robot chat`)."""
    parser.add_argument("--once", metavar="TEXT", default=None, type=_instruction,
                        help="send one instruction, print the task's progress and reply, and exit: "
                             f"{EXIT_SUCCEEDED} succeeded, {EXIT_FAILED} failed, refused or cancelled, "
                             f"{EXIT_NO_SERVER} no task planner")
    parser.add_argument("--namespace", default=None, metavar="NS", help="robot namespace (e.g. /robot1)")
    parser.add_argument("--server-timeout", type=float, default=DEFAULT_SERVER_TIMEOUT_S, metavar="S",
                        help="seconds to wait for the task planner (default: %(default)s)")
    return parser


def _instruction(text: str) -> str:
    instruction = parse_line(text)
    if instruction is None:
        raise argparse.ArgumentTypeError("the instruction is empty")
    return instruction
