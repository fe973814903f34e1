"""Start a stack's nodes: one OS process each (as ros2 launch does), or all on one executor."""

from __future__ import annotations

import ctypes
import importlib
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable

import rclpy
from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

from modular_robot.core.stack import EXECUTABLES, NodeSpec, Stack
from modular_robot.ros.spin import destroy_node

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Ask the kernel to SIGTERM this child when the parent dies, so no node outlives `up`."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def node_command(spec: NodeSpec) -> list[str]:
    """Return the command line that starts one node as its own process."""
    module, _ = EXECUTABLES[spec.executable]
    return [sys.executable, "-m", module, *spec.ros_arguments()]


class ProcessGroup:
    """The processes of a stack; stops them all with SIGINT, then SIGTERM, then SIGKILL."""

    def __init__(self, stack: Stack, env: dict[str, str] | None = None) -> None:
        self.stack = stack
        self.processes: list[tuple[NodeSpec, subprocess.Popen]] = []
        for spec in stack.nodes:
            # Each node gets its own session so a terminal's Ctrl-C reaches only `up`, which then
            # stops the nodes in order; PDEATHSIG covers `up` itself being killed.
            process = subprocess.Popen(node_command(spec), env=env, start_new_session=True,
                                       preexec_fn=_die_with_parent)
            self.processes.append((spec, process))

    def poll(self) -> list[tuple[NodeSpec, int]]:
        """Return the nodes that have exited, with their exit codes."""
        return [(spec, p.returncode) for spec, p in self.processes if p.poll() is not None]

    def stop(self, timeout: float = 4.0) -> None:
        """Stop every node within about `timeout` seconds, escalating signals as needed."""
        for sig, wait in ((signal.SIGINT, timeout * 0.6), (signal.SIGTERM, timeout * 0.3), (signal.SIGKILL, 1.0)):
            alive = [p for _, p in self.processes if p.poll() is None]
            if not alive:
                return
            for p in alive:
                p.send_signal(sig)
            deadline = time.monotonic() + wait
            for p in alive:
                try:
                    p.wait(max(0.0, deadline - time.monotonic()))
                except subprocess.TimeoutExpired:
                    pass


def run_processes(stack: Stack, stop_event: threading.Event | None = None,
                  on_start: Callable[[ProcessGroup], None] | None = None) -> int:
    """Run a stack as processes until Ctrl-C, SIGTERM, `stop_event`, or a node exits.

    Returns:
        0 on a requested stop, else the exit code of the first node that died.
    """
    stop_event = stop_event or threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop_event.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    group = ProcessGroup(stack)
    if on_start:
        on_start(group)
    code = 0
    try:
        while not stop_event.wait(0.1):
            exited = group.poll()
            if exited:
                spec, code = exited[0]
                print(f"[up] node {spec.namespace.rstrip('/')}/{spec.name} exited with code {code}; stopping the stack",
                      file=sys.stderr)
                break
    finally:
        group.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def create_nodes(stack: Stack, context=None, introspection: bool = True) -> list:
    """Construct every node of the stack in this process, configured exactly as its process would be.

    `introspection` False builds them without parameter services and default QoS-event handlers
    (`StackNode`), for stacks that no tool outside the process inspects.
    """
    nodes = []
    for spec in stack.nodes:
        module, class_name = EXECUTABLES[spec.executable]
        node_class = getattr(importlib.import_module(module), class_name)
        nodes.append(node_class(context=context, cli_args=spec.ros_arguments(), introspection=introspection))
    return nodes


def run_in_process(stack: Stack) -> int:
    """Run every node of a stack on one multi-threaded executor until Ctrl-C."""
    try:
        with rclpy.init(args=sys.argv):
            nodes = create_nodes(stack)
            executor = MultiThreadedExecutor()
            for node in nodes:
                executor.add_node(node)
            try:
                executor.spin()
            finally:
                executor.shutdown()
                for node in nodes:
                    destroy_node(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


def interface_environment() -> dict[str, str]:
    """Return os.environ with our built interface packages (./install) on the import and library paths."""
    env = dict(os.environ)
    install = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "install")
    if os.path.isdir(install):
        site = os.path.join(install, "lib", f"python{sys.version_info.major}.{sys.version_info.minor}",
                            "site-packages")
        for key, path in (("PYTHONPATH", site), ("LD_LIBRARY_PATH", os.path.join(install, "lib"))):
            parts = [p for p in env.get(key, "").split(os.pathsep) if p]
            if path not in parts:
                env[key] = os.pathsep.join([path, *parts])
    return env
