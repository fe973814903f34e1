"""The fuzz benchmark on a small run (150 messages per topic): malformed inputs crash no node and
nothing unsafe reaches the arm; and its own safety check, on hand-made trajectories."""

import importlib.util
import sys
from pathlib import Path

import pytest
from trajectory_msgs.msg import JointTrajectory, JointTrajectoryPoint

from modular_robot.core.safety_limits import load_safety_limits

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("fuzz_eval", REPO / "benchmarks" / "fuzz_eval.py")
fuzz_eval = importlib.util.module_from_spec(_spec)
# Registered first: its dataclasses look their module up while the module runs.
sys.modules["fuzz_eval"] = fuzz_eval
_spec.loader.exec_module(fuzz_eval)

@pytest.fixture(scope="module")
def fuzz():
    return fuzz_eval.run(messages=150, requests=8, seed=0, estop_rounds=2)


def test_malformed_inputs_crash_no_node(fuzz):
    # Every input topic gets all its messages, mutations the serialisation refuses replaced by others.
    assert len(fuzz.per_topic) >= 15 and set(fuzz.per_topic.values()) == {150}, fuzz.per_topic
    for topic in ("/camera/color/image_raw", "/tf", "/tf_static", "/objects/observations", "/semantic_map",
                  "/joint_states", "/safe/arm_controller/joint_trajectory"):
        assert topic in fuzz.per_topic, (topic, fuzz.per_topic)
    assert not fuzz.crashes, "\n".join(f"{c.node} {c.entity} {c.error}\n  input: {c.input_excerpt}\n{c.traceback}"
                                       for c in fuzz.crashes[:3])


def test_nothing_unsafe_reaches_the_hardware_and_the_stop_stops_the_arm(fuzz):
    assert fuzz.hardware_checked > 0, "no command reached the hardware topics: nothing was checked"
    assert fuzz.unsafe == []
    # Every round stopped the arm, each within 100 ms of sim time.
    assert len(fuzz.estop_ms) == 2, fuzz.estop_notes
    assert max(fuzz.estop_ms) <= 100.0, fuzz.estop_ms


def test_the_summary_is_the_issues_json_line(fuzz):
    assert list(fuzz.summary()) == ["messages", "node_crashes", "unhandled_exceptions", "unsafe_forwarded",
                                    "estop_ms_sim_p95"]


def _trajectory(points):
    limits = load_safety_limits(fuzz_eval.LIMITS_FILE)
    msg = JointTrajectory(joint_names=list(limits.arm.joint_names))
    for t, q, v in points:
        point = JointTrajectoryPoint(positions=[q, -0.5, 0.0, -2.0, 0.0, 1.5, 0.0],
                                     velocities=[v, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
        point.time_from_start.sec, point.time_from_start.nanosec = int(t), int(round(t % 1 * 1e9))
        msg.points.append(point)
    return msg, limits


@pytest.mark.parametrize("points, problem", [
    ([(0.0, 0.0, 0.0), (2.0, 0.6, 0.0)], None),
    ([(0.0, 0.0, 0.0), (2.0, 3.5, 0.0)], "outside limits"),
    ([(0.0, 0.0, 0.0), (0.1, 0.6, 0.0)], "mean speeds"),
    ([(0.0, 0.0, 0.0), (0.5, 0.5, 2.1)], "mean accelerations"),
    ([(0.0, 0.0, 0.0), (0.0, 0.0, 0.0)], "not after"),
    ([(0.0, float("nan"), 0.0)], "positions"),
])
def test_the_benchmarks_own_check_flags_what_breaks_the_limits(points, problem):
    msg, limits = _trajectory(points)
    found = fuzz_eval._check_trajectory(msg, limits)
    assert (found is None) if problem is None else (problem in found), found
