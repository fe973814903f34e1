"""Episode recording to MCAP and `modular-robot replay`.

A short lockstep episode (sim and perception at 320x240, semantic map) is recorded by the in-process
recorder, read back with rosbags' reader and its typestore, and replayed into a fresh context.
"""

import subprocess
import sys
import threading
import time
from itertools import pairwise
from pathlib import Path
from types import SimpleNamespace

import pytest
import rclpy
from rclpy.executors import SingleThreadedExecutor
from rclpy.qos import DurabilityPolicy, ReliabilityPolicy
from rclpy.serialization import deserialize_message, serialize_message
from rosbags.interfaces import QosDurability
from rosbags.rosbag2 import Reader
from sensor_msgs.msg import Image, JointState
from std_msgs.msg import String
from trajectory_msgs.msg import JointTrajectory

from modular_robot.core.stack import parse_stack
from modular_robot.harness.lockstep import LockstepStack
from modular_robot.harness.replay import Replayer, is_command_topic, replay_topic
from modular_robot.ros import qos
from modular_robot.ros.recorder import build_typestore, header_stamp_ns, start_recorder, subscription_qos
from modular_robot.scenarios.scenario import parse_scenario
from modular_robot_interfaces.action import ExecuteTask
from modular_robot_interfaces.msg import SemanticMap

ROOT = Path(__file__).resolve().parents[1]
SCENE = """
name: recorder_scene
robot: panda_tabletop
objects:
  - {id: red_cube, type: cube, color: red, size: 0.04, pose: [0.55, 0.10, 0.0, 0.5]}
  - {id: blue_cube, type: cube, color: blue, size: 0.04, pose: [0.50, -0.15, 0.0, 0.0]}
expect:
  - {holding: red_cube}
"""
STACK = {"name": "recorder_test", "use_sim_time": True, "nodes": [
    {"name": "sim", "executable": "sim_bridge",
     "parameters": {"camera_width": 320, "camera_height": 240, "camera_rate_hz": 10.0}},
    {"name": "perception", "executable": "perception", "parameters": {"detector": "geometric"}},
    {"name": "semantic_map", "executable": "semantic_map"},
]}
EPISODE_S = 3.0
LATE_TOPIC = "/late_topic"
FEEDBACK_TOPIC = "/execute_task/_action/feedback"
COMMAND_TOPIC = "/arm_controller/joint_trajectory"


@pytest.fixture(scope="module")
def recording(tmp_path_factory):
    """Record EPISODE_S of sim time, with a latched topic that appears after the recorder started."""
    path = tmp_path_factory.mktemp("recording") / "episode.mcap"
    stack = LockstepStack(parse_scenario(SCENE), parse_stack(STACK), renderer="tiny")
    try:
        recorder = start_recorder(path, stack.context, stack.executor, image_rate_hz=2.0, introspection=False)
        stack.advance(EPISODE_S / 2)
        stack.client.create_publisher(String, LATE_TOPIC, qos.LATCHED).publish(String(data="appeared later"))
        feedback = ExecuteTask.Impl.FeedbackMessage()
        feedback.feedback.plan, feedback.feedback.step = "1. pick(object=red_cube_1)", 1
        stack.client.create_publisher(ExecuteTask.Impl.FeedbackMessage, FEEDBACK_TOPIC, qos.LATCHED).publish(feedback)
        # An empty trajectory: the sim refuses it, but the recording holds a command topic.
        stack.client.create_publisher(JointTrajectory, COMMAND_TOPIC, qos.LATCHED).publish(JointTrajectory())
        stack.advance(EPISODE_S / 2)
        # Discovery looks at the graph on wall time: step on until the late topic's latched message is in.
        assert stack.advance_until(lambda: all(recorder.counts.get(t, 0) == 1 for t in
                                               (LATE_TOPIC, FEEDBACK_TOPIC, COMMAND_TOPIC)), 5.0), recorder.counts
        sim_s = stack.sim_time
        recorder.close()
    finally:
        stack.close()
    assert not [p.name for p in path.parent.iterdir() if p != path], "the rosbag2 work folder was left behind"
    messages: dict[str, list[tuple[int, bytes]]] = {}
    with Reader(path) as reader:
        connections = {c.topic: c for c in reader.connections}
        for connection, stamp_ns, data in reader.messages():
            messages.setdefault(connection.topic, []).append((stamp_ns, bytes(data)))
        start_ns, end_ns = reader.start_time, reader.end_time
    yield SimpleNamespace(path=path, sim_s=sim_s, connections=connections, messages=messages, start_ns=start_ns,
                          end_ns=end_ns, typestore=build_typestore())


def test_header_stamp_is_read_from_the_serialised_bytes():
    image = Image(height=1, width=1, encoding="mono8", step=1, data=b"\x07")
    image.header.stamp.sec, image.header.stamp.nanosec = 12, 345_000_000
    assert header_stamp_ns(serialize_message(image)) == 12_345_000_000


def test_subscription_qos_matches_every_publisher():
    def publisher(profile):
        return SimpleNamespace(qos_profile=profile)
    assert subscription_qos([publisher(qos.LATCHED)]).durability == DurabilityPolicy.TRANSIENT_LOCAL
    assert subscription_qos([publisher(qos.LATCHED)]).reliability == ReliabilityPolicy.RELIABLE
    mixed = subscription_qos([publisher(qos.LATCHED), publisher(qos.SENSOR_DATA)])
    assert mixed.durability == DurabilityPolicy.VOLATILE
    assert mixed.reliability == ReliabilityPolicy.BEST_EFFORT


def test_replay_pushes_topics_into_the_namespace_but_not_clock():
    assert replay_topic("/joint_states", "robot1") == "/robot1/joint_states"
    assert replay_topic("/joint_states", "/robot1/") == "/robot1/joint_states"
    assert replay_topic("/clock", "robot1") == "/clock"
    assert replay_topic("/tf", "") == "/tf"


def test_every_stream_of_the_stack_is_recorded_under_its_resolved_name(recording):
    # The lockstep stack runs in the root namespace: relative names resolve to /name.
    for topic in ("/joint_states", "/tf", "/tf_static", "/clock", "/camera/color/image_raw",
                  "/camera/depth/image_raw", "/camera/color/camera_info", "/objects/observations",
                  "/semantic_map", LATE_TOPIC):
        assert recording.messages.get(topic), f"{topic} missing; recorded: {sorted(recording.messages)}"
    assert recording.connections["/semantic_map"].msgtype == "modular_robot_interfaces/msg/SemanticMap"
    assert recording.connections["/camera/color/image_raw"].msgdef.data.startswith("std_msgs/Header header")


def test_images_are_kept_at_the_reduced_rate_and_other_topics_in_full(recording):
    images = recording.messages["/camera/color/image_raw"]
    infos = recording.messages["/camera/color/camera_info"]
    # 10 Hz camera kept at 2 Hz; the camera info beside it is kept at 10 Hz.
    assert abs(len(images) - 2.0 * recording.sim_s) <= 1.5, (len(images), recording.sim_s)
    assert abs(len(infos) - 10.0 * recording.sim_s) <= 3, (len(infos), recording.sim_s)
    stamps = [header_stamp_ns(data) for _, data in images]
    # Kept frames lie on the 0.5 s grid of sim time; the first is the first frame the camera took.
    assert all(abs(b - a - 0.5e9) <= 0.01e9 for a, b in pairwise(stamps[1:])), stamps
    assert 0 < stamps[1] - stamps[0] <= 0.51e9, stamps


def test_latched_topics_are_recorded_with_their_durability(recording):
    offered = recording.connections["/semantic_map"].ext.offered_qos_profiles
    assert offered and offered[0].durability == QosDurability.TRANSIENT_LOCAL
    late = deserialize_message(recording.messages[LATE_TOPIC][0][1], String)
    assert late.data == "appeared later"


def test_messages_are_stamped_with_sim_time_on_arrival(recording):
    stamps = [stamp for topic in recording.messages.values() for stamp, _ in topic]
    assert 0 <= recording.start_ns <= min(stamps) and max(stamps) < recording.end_ns
    assert max(stamps) <= recording.sim_s * 1e9 + 1e7, (max(stamps), recording.sim_s)
    assert max(stamps) - min(stamps) >= 0.8 * EPISODE_S * 1e9
    # Lockstep steps freely between camera frames (it waits for perception only on a new frame), so
    # joint states arrive in a burst per frame: never before their stamp, and typically late by up to
    # a camera period. On a loaded machine stepping goes on when perception does not answer in time,
    # and a burst can arrive later (0.76 s once in CI); seconds late would be a wrong clock.
    lags = sorted((stamp - header_stamp_ns(data)) / 1e9 for stamp, data in recording.messages["/joint_states"])
    assert lags[0] >= 0.0 and lags[len(lags) // 2] <= 0.1 + 0.011 and lags[-1] <= 2.0, (lags[0], lags[-1])


def test_semantic_map_deserialises_with_the_registered_types(recording):
    _, data = recording.messages["/semantic_map"][-1]
    semantic_map = recording.typestore.deserialize_cdr(data, "modular_robot_interfaces/msg/SemanticMap")
    assert len(semantic_map.objects) > 0
    assert {o.label for o in semantic_map.objects} == {o.label for o in deserialize_message(data, SemanticMap).objects}
    joint_states = recording.typestore.deserialize_cdr(recording.messages["/joint_states"][-1][1],
                                                       "sensor_msgs/msg/JointState")
    assert len(joint_states.name) == len(joint_states.position) > 0


def test_replay_publishes_the_recorded_messages_into_a_fresh_context(recording):
    recorded = [deserialize_message(data, JointState) for _, data in recording.messages["/joint_states"]]
    maps = [deserialize_message(data, SemanticMap) for _, data in recording.messages["/semantic_map"]]
    probe_context, replay_context = rclpy.Context(), rclpy.Context()
    rclpy.init(context=probe_context)
    rclpy.init(context=replay_context)
    executor = SingleThreadedExecutor(context=probe_context)
    probe = rclpy.create_node("probe", context=probe_context)
    player = rclpy.create_node("replay", context=replay_context)
    stop = threading.Event()
    thread = None
    try:
        received_joints, received_maps = [], []
        probe.create_subscription(JointState, "/replayed/joint_states", received_joints.append, qos.RELIABLE)
        probe.create_subscription(SemanticMap, "/replayed/semantic_map", received_maps.append, qos.LATCHED)
        executor.add_node(probe)
        replayer = Replayer(recording.path, player, topics=["joint_states", "/semantic_map"], namespace="replayed")
        assert {c.topic for c in replayer.connections} == {"/joint_states", "/semantic_map"}
        thread = threading.Thread(target=replayer.play, kwargs={"rate": 5.0, "loop": True, "stop": stop})
        thread.start()
        deadline = time.monotonic() + 20.0
        while (len(received_joints) < 20 or not received_maps) and time.monotonic() < deadline:
            executor.spin_once(timeout_sec=0.1)
        assert len(received_joints) >= 20 and received_maps, (len(received_joints), len(received_maps))
        assert all(msg in recorded for msg in received_joints)
        assert any(received_maps[0] == m for m in maps)
    finally:
        stop.set()
        if thread is not None:
            thread.join()
        executor.shutdown()
        probe.destroy_node()
        player.destroy_node()
        rclpy.shutdown(context=probe_context)
        rclpy.shutdown(context=replay_context)


def test_replay_refuses_topics_the_recording_lacks(recording):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("replay_missing", context=context)
    try:
        with pytest.raises(ValueError, match="/no_such_topic"):
            Replayer(recording.path, node, topics=["no_such_topic"])
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


def test_action_feedback_is_recorded_and_reads_back(recording):
    msgtype = "modular_robot_interfaces/action/ExecuteTask_FeedbackMessage"
    assert recording.connections[FEEDBACK_TOPIC].msgtype == msgtype
    (_, data), = recording.messages[FEEDBACK_TOPIC]
    feedback = recording.typestore.deserialize_cdr(data, msgtype)
    assert feedback.feedback.plan == "1. pick(object=red_cube_1)" and feedback.feedback.step == 1


@pytest.mark.parametrize("topic, command", [
    ("/arm_controller/joint_trajectory", True), ("/robot1/arm_controller/joint_trajectory", True),
    ("/gripper_controller/commands", True), ("/cmd_vel", True), ("/robot1/emergency_stop", True),
    ("/safe/arm_controller/joint_trajectory", True), ("/safe/cmd_vel", True),
    ("/joint_states", False), ("/camera/color/image_raw", False), ("/tf", False), ("/odom", False),
    ("/semantic_map", False), ("/execute_task/_action/feedback", False), ("/commands", False),
])
def test_command_topics_are_told_from_sensor_and_state_topics(topic, command):
    assert is_command_topic(topic) is command


def test_replay_withholds_command_topics_unless_named_as_such(recording):
    context = rclpy.Context()
    rclpy.init(context=context)
    node = rclpy.create_node("replay_commands", context=context)
    try:
        default = Replayer(recording.path, node)
        topics = {c.topic for c in default.connections}
        assert COMMAND_TOPIC not in topics and default.withheld == [COMMAND_TOPIC]
        assert {"/joint_states", "/semantic_map", FEEDBACK_TOPIC} <= topics
        with pytest.raises(ValueError, match="command topics move a live robot; name them with --command-topics"):
            Replayer(recording.path, node, topics=[COMMAND_TOPIC])
        with pytest.raises(ValueError, match="not command topics"):
            Replayer(recording.path, node, command_topics=["joint_states"])
        named = Replayer(recording.path, node, topics=["joint_states"], command_topics=[COMMAND_TOPIC])
        assert {c.topic for c in named.connections} == {"/joint_states", COMMAND_TOPIC} and not named.withheld
    finally:
        node.destroy_node()
        rclpy.shutdown(context=context)


@pytest.mark.parametrize("name", ["README.md", "modular_robot"])
def test_replay_of_something_that_is_not_a_recording_is_one_clear_error(name):
    result = subprocess.run([sys.executable, "-m", "modular_robot.cli", "replay", name], cwd=ROOT,
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"error: {name} is not a recording" in result.stderr
    assert "Traceback" not in result.stderr
