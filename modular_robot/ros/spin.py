"""The one way our nodes run as processes: init, build, spin, clean shutdown on Ctrl-C."""

from __future__ import annotations

from collections.abc import Callable

import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.action import ActionClient, ActionServer
from rclpy.context import Context
from rclpy.exceptions import ParameterException
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor
from rclpy.node import Node


def destroy_node(node: Node) -> None:
    """Destroy a node with its action servers and clients.

    rclpy's `Node.destroy_node` leaves them (they are waitables) and with them the node on the
    graph: a stack built later in the same process would still see an `execute_task` server.
    """
    for waitable in list(node.waitables):
        if isinstance(waitable, (ActionServer, ActionClient)):
            waitable.destroy()
    node.destroy_node()


def spin_node(build: Callable[[], Node], logger_name: str, args: list[str] | None = None,
              multithreaded: bool = False) -> None:
    """Build a node and spin it until shutdown.

    A node that cannot be built from its parameters (a missing scenario file, a bad value) ends
    the process with one clear fatal log line and exit status 1, not a traceback. A node whose
    callbacks block while waiting for other messages (action and service servers that wait for
    fresh data) needs `multithreaded`.
    """
    try:
        with rclpy.init(args=args):
            try:
                node = build()
            except (ValueError, OSError, RuntimeError, ParameterException) as error:
                rclpy.logging.get_logger(logger_name).fatal(f"cannot start: {error}")
                raise SystemExit(1) from error
            try:
                rclpy.spin(node, executor=MultiThreadedExecutor() if multithreaded else None)
            except RCLError:
                raise_unless_shut_down()
            finally:
                destroy_node(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass


def raise_unless_shut_down(context: Context | None = None) -> None:
    """Re-raise the RCLError being handled unless the context (the default one) was shut down.

    Ctrl-C shuts the context down at once, even while a callback is publishing; that callback's
    "publisher's context is invalid" is the shutdown itself, not an error of the node.
    """
    if rclpy.ok(context=context):
        raise
