"""Chat node: talk to the robot from a terminal through the task planner's `execute_task` action.

Each line typed at `you> ` becomes an ExecuteTask goal. While the task runs the chat prints the
plan whenever its text changes and each new status line, then the robot's reply; it keeps reading
the terminal meanwhile: "stop", "halt", "wait" or "cancel" cancels the task at once, other lines
wait for the task's end. Ctrl-C also cancels the running task; at the prompt it leaves, as do
"quit", "exit" and end of input. The dialogue is published on chat/user (each instruction sent)
and chat/robot (each reply) for loggers, the critic and other UIs. `--once TEXT` sends one
instruction and exits with the task's outcome.

The node only holds the two publishers and the action client. It spins on a background thread
while the main thread prints and another thread reads the terminal; what is printed comes from
planning/chat_format.py.
"""

from __future__ import annotations

import argparse
import queue
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TextIO

import rclpy
from action_msgs.msg import GoalStatus
from rclpy.action import ActionClient
from rclpy.exceptions import NameValidationException
from rclpy.executors import SingleThreadedExecutor
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions
from rclpy.task import Future
from rclpy.utilities import remove_ros_args
from std_msgs.msg import String

from modular_robot.planning.chat_format import (
    CANCELLED_REPLY,
    DEFAULT_SERVER_TIMEOUT_S,
    EXIT_FAILED,
    EXIT_NO_SERVER,
    EXIT_SUCCEEDED,
    EXIT_USAGE,
    PROMPT,
    FeedbackView,
    Reply,
    add_chat_arguments,
    cancel_reply,
    is_quit,
    no_server_message,
    one_line,
    parse_line,
    refused_reply,
    result_reply,
)
from modular_robot.planning.executor import is_stop_word
from modular_robot.ros import qos
from modular_robot.ros.stack_node import StackNode
from modular_robot_interfaces.action import ExecuteTask

# How long Ctrl-C waits for the goal's acceptance and then for the planner's answer to the cancel.
CANCEL_WAIT_S = 2.0
# How often a running task's wait checks that the planner is still there.
LIVENESS_PERIOD_S = 1.0


@dataclass(frozen=True)
class Typed:
    """A line typed at the prompt, or the end of input (text None)."""

    text: str | None


class ChatNode(StackNode):
    """Publish the dialogue and hold the client of the task planner's action."""

    def __init__(self, **kwargs) -> None:
        super().__init__("chat", **kwargs)
        self.user_pub = self.create_publisher(String, "chat/user", qos.RELIABLE)
        self.robot_pub = self.create_publisher(String, "chat/robot", qos.RELIABLE)
        self.tasks = ActionClient(self, ExecuteTask, "execute_task")


@contextmanager
def spinning(node: Node) -> Iterator[Node]:
    """Spin `node` on a background thread for the duration of the block, then destroy it."""
    executor = SingleThreadedExecutor(context=node.context)
    executor.add_node(node)
    stop = Future()
    # Spinning until a future, not until shutdown: Executor.shutdown destroys the guard condition
    # without waiting for the spinning thread, which may still be using it.
    thread = threading.Thread(target=executor.spin_until_future_complete, args=(stop,),
                              name=f"{node.get_name()}_spin", daemon=True)
    thread.start()
    try:
        yield node
    finally:
        stop.set_result(None)
        thread.join()
        executor.shutdown()
        node.destroy_node()


def run_task(node: ChatNode, instruction: str, out: TextIO | None = None,
             server_timeout_s: float = DEFAULT_SERVER_TIMEOUT_S, inbox: queue.SimpleQueue | None = None) -> int:
    """Send one instruction, print the task's progress and the robot's reply; Ctrl-C cancels it.

    Call from a thread other than the one spinning `node`.

    Args:
        node: The chat node, spinning (see `spinning`).
        instruction: What the user asked for.
        out: Where the progress and reply are printed (None: standard output).
        server_timeout_s: How long to wait for a task planner to serve the action.
        inbox: Where `Typed` lines arrive while the task runs (see `repl`): a stop word cancels the
            task; other lines are put back once the task has ended. None: nothing is read.

    Returns:
        The exit code of `--once`: EXIT_SUCCEEDED, EXIT_FAILED (failed, refused or cancelled) or
        EXIT_NO_SERVER.
    """
    out = sys.stdout if out is None else out
    try:
        ready = node.tasks.wait_for_server(timeout_sec=server_timeout_s)
    except KeyboardInterrupt:
        # Nothing was sent yet, so there is nothing to cancel.
        return _reply(node, out, CANCELLED_REPLY, publish=False)
    if not ready:
        _print(out, no_server_message(node.resolve_topic_name("execute_task"), server_timeout_s))
        return EXIT_NO_SERVER
    node.user_pub.publish(String(data=instruction))
    # Everything the executor thread learns about the goal comes through one queue, so this
    # thread prints feedback and the reply in the order they arrived.
    events: queue.SimpleQueue = queue.SimpleQueue() if inbox is None else inbox
    goal_future = node.tasks.send_goal_async(ExecuteTask.Goal(instruction=instruction), feedback_callback=events.put)
    goal_future.add_done_callback(events.put)
    deferred: list[Typed] = []
    try:
        reply = _follow(node, goal_future, events, lambda line: _print(out, line), deferred)
    except KeyboardInterrupt:
        reply = _cancel(goal_future)
    for typed in deferred:
        events.put(typed)
    return _reply(node, out, reply)


def repl(node: ChatNode, out: TextIO | None = None, read_line: Callable[[str], str] = input,
         server_timeout_s: float = DEFAULT_SERVER_TIMEOUT_S) -> int:
    """Read instructions at the prompt and run each until "quit", "exit", end of input or Ctrl-C.

    Args:
        node: The chat node, spinning (see `spinning`).
        out: Where the progress and replies are printed (None: standard output).
        read_line: Shows the prompt and returns the next line typed (raises EOFError at the end).
        server_timeout_s: How long each instruction waits for a task planner.

    Returns:
        EXIT_SUCCEEDED: leaving the chat is not an error, whatever the tasks did.
    """
    out = sys.stdout if out is None else out
    # Lines are read on their own thread, so that a stop word typed while a task runs reaches it.
    inbox: queue.SimpleQueue = queue.SimpleQueue()
    threading.Thread(target=_read_lines, args=(read_line, inbox), name="chat_input", daemon=True).start()
    while True:
        try:
            typed = _next_typed(inbox)
        except KeyboardInterrupt:
            typed = Typed(None)
        if typed.text is None:
            _print(out, "")
            return EXIT_SUCCEEDED
        instruction = parse_line(typed.text)
        if instruction is None:
            continue
        if is_quit(instruction):
            return EXIT_SUCCEEDED
        run_task(node, instruction, out, server_timeout_s, inbox)


def _read_lines(read_line: Callable[[str], str], inbox: queue.SimpleQueue) -> None:
    """Put each typed line into `inbox` until a quit word or the end of input (then Typed(None))."""
    while True:
        try:
            text = read_line(PROMPT)
        except (EOFError, KeyboardInterrupt):
            inbox.put(Typed(None))
            return
        inbox.put(Typed(text))
        if is_quit(text):
            return


def _next_typed(inbox: queue.SimpleQueue) -> Typed:
    """Return the next typed line, passing over what a finished task's goal still sent."""
    while True:
        event = inbox.get()
        if isinstance(event, Typed):
            return event


def _follow(node: ChatNode, goal_future: Future, events: queue.SimpleQueue, show: Callable[[str], None],
            deferred: list[Typed]) -> Reply:
    """Print the goal's feedback as it comes and return the reply once the goal has ended.

    A stop word typed meanwhile cancels the goal; any other typed line goes into `deferred`.
    """
    view = FeedbackView()
    result_future = None
    while True:
        try:
            event = events.get(timeout=LIVENESS_PERIOD_S)
        except queue.Empty:
            if not node.tasks.server_is_ready():
                return Reply("the task planner went away before the task ended", EXIT_FAILED, "failed")
            continue
        if isinstance(event, Typed):
            if event.text is not None and is_stop_word(event.text):
                node.user_pub.publish(String(data=one_line(event.text)))
                return _cancel(goal_future)
            deferred.append(event)
            if event.text is not None and parse_line(event.text) is not None:
                show(f"(after this task, or say 'stop' to cancel it: {one_line(event.text)})")
        elif event is goal_future:
            handle = goal_future.result()
            if not handle.accepted:
                return refused_reply()
            result_future = handle.get_result_async()
            result_future.add_done_callback(events.put)
        elif event is result_future:
            response = result_future.result()
            return result_reply(response.status == GoalStatus.STATUS_SUCCEEDED and response.result.success,
                                response.result.summary)
        else:
            feedback = getattr(event, "feedback", None)
            for line in view.update(getattr(feedback, "plan", ""), getattr(feedback, "status", "")):
                show(line)


def _cancel(goal_future: Future) -> Reply:
    """Ask the planner to cancel the goal; wait briefly for its answer (a second Ctrl-C stops waiting)."""
    return_code = None
    try:
        if _wait(goal_future, CANCEL_WAIT_S):
            handle = goal_future.result()
            if not handle.accepted:
                return refused_reply()
            cancel_future = handle.cancel_goal_async()
            if _wait(cancel_future, CANCEL_WAIT_S):
                return_code = cancel_future.result().return_code
    except KeyboardInterrupt:
        pass
    return cancel_reply(return_code, CANCEL_WAIT_S)


def _wait(future: Future, timeout_s: float) -> bool:
    """Block until `future` is done (completed by the executor thread) or `timeout_s` passes."""
    done = threading.Event()
    future.add_done_callback(lambda _: done.set())
    return done.wait(timeout_s)


def _reply(node: ChatNode, out: TextIO, reply: Reply, publish: bool = True) -> int:
    if publish:
        node.robot_pub.publish(String(data=reply.text))
    _print(out, reply.line)
    return reply.exit_code


def _print(out: TextIO, line: str) -> None:
    out.write(line + "\n")
    out.flush()


def run_chat(once: str | None = None, namespace: str | None = None,
             server_timeout_s: float = DEFAULT_SERVER_TIMEOUT_S, args: list[str] | None = None) -> int:
    """Start ROS and the chat node, then chat at the terminal (or run `once` and return).

    Args:
        once: One instruction to run instead of the prompt.
        namespace: The robot's namespace (ROS arguments in `args` may also set it).
        server_timeout_s: How long each instruction waits for a task planner.
        args: Command line whose ROS arguments configure the node (None: sys.argv).

    Returns:
        The process's exit code: the task's outcome with `once`, else 0; EXIT_USAGE for a bad namespace.
    """
    # rclpy's own SIGINT handler would shut the context down, and with it the cancel request
    # Ctrl-C must still send; Python's default handler raises KeyboardInterrupt instead.
    with rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO):
        try:
            node = ChatNode(namespace=namespace)
        except NameValidationException as error:
            print(f"error: {error}", file=sys.stderr)
            return EXIT_USAGE
        with spinning(node):
            try:
                if once is not None:
                    return run_task(node, once, server_timeout_s=server_timeout_s)
                return repl(node, server_timeout_s=server_timeout_s)
            except KeyboardInterrupt:
                # Ctrl-C between the prompt and a task (or while printing): leave quietly.
                return EXIT_SUCCEEDED if once is None else EXIT_FAILED


def main(args: list[str] | None = None) -> int:
    """Run the chat: `ros2 run modular_robot chat [--once TEXT] [--namespace NS] [--server-timeout S]`."""
    argv = sys.argv if args is None else args
    parser = add_chat_arguments(argparse.ArgumentParser(prog="chat", description=__doc__.split("\n")[0]))
    options = parser.parse_args(remove_ros_args(argv)[1:])
    return run_chat(options.once, options.namespace, options.server_timeout, argv)


if __name__ == "__main__":
    sys.exit(main())
