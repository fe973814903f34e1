"""A live `modular-robot up` stack shared by the tests of a module, and a chat client to drive it."""

from __future__ import annotations

import io
import os
import queue
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import rclpy
import yaml
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import JointState

from modular_robot.core.robot_model import PANDA_ARM_JOINTS
from modular_robot.nodes.chat_node import ChatNode, run_task, spinning
from modular_robot.ros import qos
from modular_robot_interfaces.msg import SemanticMap
from ros_helpers import pids_with, stop_up, wait_for

ROOT = Path(__file__).resolve().parents[2]
STACK = ROOT / "config/stacks/sim_tabletop.yaml"


@dataclass
class Task:
    """A task sent through the chat's logic on its own thread: its printed lines and exit code."""

    instruction: str
    out: io.StringIO = field(default_factory=io.StringIO)
    exit_code: int | None = None
    thread: threading.Thread | None = None

    def wait(self, timeout_s: float) -> int:
        """Wait for the task's end; fail with its transcript after `timeout_s`."""
        self.thread.join(timeout_s)
        assert not self.thread.is_alive(), f"{self.instruction!r} did not end in {timeout_s:.0f} s:\n{self.text}"
        return self.exit_code

    @property
    def text(self) -> str:
        return self.out.getvalue()

    @property
    def reply(self) -> str:
        """The robot's reply: the transcript's last line."""
        lines = self.text.strip().splitlines()
        return lines[-1] if lines else ""


class LiveStack:
    """One `up` process, its log, and a chat node that also follows the arm's joint_states.

    Attributes:
        namespace: The stack's namespace.
        log_path: Where `up` and its nodes write.
        samples: (sim time s, fastest arm joint speed rad/s) per joint_states, newest last.
        map_labels: The labels of the objects in the latest semantic_map.
        map_held: The labels of the objects it says the robot holds.
    """

    def __init__(self, up: subprocess.Popen, namespace: str, log_path: Path, chat: ChatNode) -> None:
        self.up = up
        self.namespace = namespace
        self.log_path = log_path
        self.chat = chat
        self.samples: list[tuple[float, float]] = []
        self.map_labels: list[str] = []
        self.map_held: list[str] = []
        self._lock = threading.Lock()
        chat.create_subscription(SemanticMap, "semantic_map", self._on_map, qos.LATCHED)
        chat.create_subscription(JointState, "joint_states", self._on_joint_states,
                                 QoSProfile(depth=200, reliability=ReliabilityPolicy.RELIABLE))

    def _on_map(self, msg: SemanticMap) -> None:
        self.map_labels = [o.label for o in msg.objects]
        self.map_held = [o.label for o in msg.objects if o.held]

    def _on_joint_states(self, msg: JointState) -> None:
        speeds = [abs(v) for n, v in zip(msg.name, msg.velocity) if n in PANDA_ARM_JOINTS]
        if speeds:
            with self._lock:
                self.samples.append((msg.header.stamp.sec + msg.header.stamp.nanosec * 1e-9, max(speeds)))
                del self.samples[:-2000]

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def pid_of(self, node: str) -> int | None:
        """Return the pid of the stack's node `node`, None unless exactly one process runs it."""
        pids = [p for p in pids_with(f"__ns:={self.namespace}\0")
                if f"__node:={node}\0" in _cmdline(p)]
        return pids[0] if len(pids) == 1 else None

    def sim_now(self) -> float:
        """Return the stamp of the latest joint_states (sim time, s)."""
        wait_for(lambda: self.samples, 30, "joint_states")
        with self._lock:
            return self.samples[-1][0]

    def arm_speed_since(self, t0: float) -> list[tuple[float, float]]:
        """Return the (sim time, fastest arm joint speed) samples stamped at or after `t0`."""
        with self._lock:
            return [s for s in self.samples if s[0] >= t0]

    def send(self, instruction: str) -> Task:
        """Send `instruction` as the chat does, on a thread; return the running task."""
        task = Task(instruction)

        def run() -> None:
            task.exit_code = run_task(self.chat, instruction, task.out, server_timeout_s=60.0,
                                      inbox=queue.SimpleQueue())

        task.thread = threading.Thread(target=run, name=f"task {instruction}", daemon=True)
        task.thread.start()
        return task


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""


def write_stack(path: Path, parameters: dict[str, dict], respawn_delay_s: float) -> Path:
    """Write the tabletop stack with absolute data paths, `parameters` merged in, respawns after `respawn_delay_s`."""
    document = yaml.safe_load(STACK.read_text())
    for node in document["nodes"]:
        values = node.setdefault("parameters", {})
        if node["executable"] == "sim_bridge":
            values["scenario"] = str(ROOT / values["scenario"])
        else:
            node["respawn_delay"] = respawn_delay_s
        values.update(parameters.get(node["name"], {}))
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture(scope="module")
def live_stack(request, tmp_path_factory) -> Iterator[LiveStack]:
    """Run the tabletop stack with `up` for a module's tests (its `STACK_PARAMETERS`, if any, merged in)."""
    tmp = tmp_path_factory.mktemp("live_stack")
    parameters = getattr(request.module, "STACK_PARAMETERS", {})
    stack = write_stack(tmp / "stack.yaml", parameters(tmp) if callable(parameters) else parameters,
                        getattr(request.module, "RESPAWN_DELAY_S", 0.2))
    namespace = f"/{request.module.__name__.rsplit('.', 1)[-1]}_{os.getpid()}"
    log_path = tmp / "up.log"
    # This checkout's DDS profile, whatever the caller's environment names: its lease duration sets
    # how soon a killed node leaves the graph.
    env = {**os.environ, "FASTDDS_DEFAULT_PROFILES_FILE": str(ROOT / "config/fastdds_localhost.xml")}
    with log_path.open("w") as log:
        up = subprocess.Popen([sys.executable, "-m", "modular_robot.cli", "up", str(stack), "--namespace", namespace],
                              cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env=env)
    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        chat = ChatNode(namespace=namespace, context=context)
        live = LiveStack(up, namespace, log_path, chat)
        with spinning(chat):
            yield live
    finally:
        rclpy.shutdown(context=context)
        stop_up(up)
