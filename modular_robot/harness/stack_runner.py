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
from rclpy._rclpy_pybind11 import RCLError
from rclpy.exceptions import ParameterException
from rclpy.executors import Executor, ExternalShutdownException, MultiThreadedExecutor, SingleThreadedExecutor

from modular_robot.core.stack import EXECUTABLES, NodeSpec, RestartTracker, Stack, StackError, dds_environment
from modular_robot.ros.spin import destroy_node, raise_unless_shut_down

_PR_SET_PDEATHSIG = 1
# Executables whose callbacks must run in the thread that built the node: the simulator renders
# with an EGL context that is current in that thread only, and rendering from an executor's worker
# thread killed `up --in-process` with a segmentation fault at the first camera frame.
OWN_THREAD_EXECUTABLES = frozenset({"sim_bridge"})


def _die_with_parent() -> None:
    """Ask the kernel to SIGTERM this child when the parent dies, so no node outlives `up`."""
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


def node_command(spec: NodeSpec) -> list[str]:
    """Return the command line that starts one node as its own process."""
    module, _ = EXECUTABLES[spec.executable]
    return [sys.executable, "-m", module, *spec.ros_arguments()]


class ProcessGroup:
    """The processes of a stack: starts, restarts, and stops them (SIGINT, then SIGTERM, then SIGKILL).

    Args:
        stack: The nodes to start, one process each.
        env: Their environment; `node_environment()` when None.
    """

    def __init__(self, stack: Stack, env: dict[str, str] | None = None) -> None:
        self.stack = stack
        self.env = node_environment() if env is None else env
        # By full node name (NodeSpec holds dicts, so it cannot be a key).
        self.processes: dict[str, subprocess.Popen] = {spec.full_name: self._start(spec) for spec in stack.nodes}

    def _start(self, spec: NodeSpec) -> subprocess.Popen:
        # Each node gets its own session so a terminal's Ctrl-C reaches only `up`, which then
        # stops the nodes in order; PDEATHSIG covers `up` itself being killed.
        return subprocess.Popen(node_command(spec), env=self.env, start_new_session=True,
                                preexec_fn=_die_with_parent)

    def restart(self, spec: NodeSpec) -> None:
        """Start `spec`'s node again (its previous process has exited)."""
        self.processes[spec.full_name] = self._start(spec)

    def pid(self, spec: NodeSpec) -> int:
        """Return the process id of `spec`'s node (the latest one started)."""
        return self.processes[spec.full_name].pid

    def poll(self) -> list[tuple[NodeSpec, int]]:
        """Return the nodes that have exited, with their exit codes."""
        return [(spec, self.processes[spec.full_name].returncode) for spec in self.stack.nodes
                if self.processes[spec.full_name].poll() is not None]

    def stop(self, timeout: float = 4.0) -> None:
        """Stop every node within about `timeout` seconds, escalating signals as needed."""
        for sig, wait in ((signal.SIGINT, timeout * 0.6), (signal.SIGTERM, timeout * 0.3), (signal.SIGKILL, 1.0)):
            alive = [p for p in self.processes.values() if p.poll() is None]
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
    """Run a stack as processes until Ctrl-C, SIGTERM, `stop_event`, or a required node is down for good.

    A node that exits is restarted, left down, or stops the stack as its restart policy says
    (`RestartTracker`); every decision is logged on stderr.

    Returns:
        0 on a requested stop, else the exit code of the node whose exit stopped the stack (1 if it was 0).
    """
    stop_event = stop_event or threading.Event()
    tracker = RestartTracker()
    previous = {sig: signal.signal(sig, lambda *_: stop_event.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    group = ProcessGroup(stack)
    if on_start:
        on_start(group)
    code = 0
    # Nodes waiting for their restart (monotonic due time) and nodes left down for good.
    pending: dict[str, tuple[NodeSpec, float]] = {}
    down: set[str] = set()
    try:
        while not stop_event.wait(0.1):
            now = time.monotonic()
            for name, (spec, due) in list(pending.items()):
                if now >= due:
                    del pending[name]
                    group.restart(spec)
                    _log(f"node {spec.full_name} restarted (pid {group.pid(spec)})")
            stopping = False
            for spec, exit_code in group.poll():
                if spec.full_name in pending or spec.full_name in down:
                    continue
                decision = tracker.on_exit(spec, exit_code, now)
                _log(decision.reason)
                if decision.action == "restart":
                    pending[spec.full_name] = (spec, now + decision.delay_s)
                elif decision.action == "give_up":
                    down.add(spec.full_name)
                else:
                    # A node killed by a signal has a negative code; `up` then exits 1.
                    code, stopping = (exit_code if exit_code > 0 else 1), True
                    break
            if stopping:
                break
    finally:
        group.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return code


def _log(line: str) -> None:
    print(f"[up] {line}", file=sys.stderr, flush=True)


def create_nodes(stack: Stack, context=None, introspection: bool = True) -> list:
    """Construct every node of the stack in this process, configured exactly as its process would be.

    `introspection` False builds them without parameter services and default QoS-event handlers
    (`StackNode`), for stacks that no tool outside the process inspects.

    Raises:
        StackError: a parameter of the wrong type, naming the node and the parameter.
    """
    nodes = []
    for spec in stack.nodes:
        module, class_name = EXECUTABLES[spec.executable]
        node_class = getattr(importlib.import_module(module), class_name)
        try:
            nodes.append(node_class(context=context, cli_args=spec.ros_arguments(), introspection=introspection))
        except ParameterException as error:
            for node in nodes:
                destroy_node(node)
            raise StackError(f"node {spec.full_name}: {error}") from error
    return nodes


def run_in_process(stack: Stack) -> int:
    """Run every node of a stack in this process until Ctrl-C.

    Nodes of OWN_THREAD_EXECUTABLES spin in this thread, which built them, on a single-threaded
    executor (as they do in their own process); the others share a multi-threaded executor in a
    background thread.
    """
    try:
        with rclpy.init(args=sys.argv):
            try:
                nodes = create_nodes(stack)
            except (ValueError, OSError, RuntimeError) as error:
                print(f"error: cannot start the stack: {error}", file=sys.stderr)
                return 1
            own, shared = SingleThreadedExecutor(), MultiThreadedExecutor()
            for spec, node in zip(stack.nodes, nodes):
                (own if spec.executable in OWN_THREAD_EXECUTABLES else shared).add_node(node)
            worker = threading.Thread(target=_spin_until_shutdown, args=(shared,), name="stack_executor", daemon=True)
            worker.start()
            try:
                own.spin()
            except RCLError:
                raise_unless_shut_down()
            finally:
                shared.shutdown()
                worker.join(timeout=5.0)
                own.shutdown()
                for node in nodes:
                    destroy_node(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    return 0


def _spin_until_shutdown(executor: Executor) -> None:
    try:
        executor.spin()
    except ExternalShutdownException:
        pass
    except RCLError:
        raise_unless_shut_down()


def node_environment() -> dict[str, str]:
    """Return the environment of the stack's processes: `interface_environment()` plus our Fast DDS profile."""
    env = interface_environment()
    env.update(dds_environment(env))
    return env


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
