"""StackNode: introspection off leaves out parameter services and default QoS-event handlers, nothing else."""

import pytest
import rclpy
from rclpy.event_handler import SubscriptionEventCallbacks
from rclpy.executors import SingleThreadedExecutor
from rclpy.parameter import Parameter
from std_msgs.msg import String

from modular_robot.core.stack import load_stack
from modular_robot.harness.stack_runner import create_nodes
from modular_robot.ros import qos
from modular_robot.ros.stack_node import StackNode


@pytest.fixture
def context():
    context = rclpy.Context()
    rclpy.init(context=context)
    yield context
    rclpy.shutdown(context=context)


def _service_names(node) -> set[str]:
    return {service.srv_name for service in node.services}


def test_introspection_on_keeps_what_outside_tools_use(context):
    node = StackNode("full", context=context)
    try:
        node.create_subscription(String, "chatter", lambda msg: None, qos.RELIABLE)
        assert "full/get_parameters" in _service_names(node)
        assert "full/get_type_description" in _service_names(node)
        # The parameter-event publisher's and the subscription's incompatible-QoS and -type handlers.
        assert len(list(node.waitables)) >= 4
    finally:
        node.destroy_node()


def test_introspection_off_leaves_out_services_and_default_event_handlers(context):
    node = StackNode("lean", context=context, introspection=False)
    try:
        node.create_subscription(String, "chatter", lambda msg: None, qos.RELIABLE)
        node.create_publisher(String, "chatter", qos.RELIABLE)
        assert not node.introspection
        assert _service_names(node) == set()
        assert list(node.waitables) == []
    finally:
        node.destroy_node()


def test_introspection_off_keeps_event_callbacks_a_caller_passes(context):
    node = StackNode("lean", context=context, introspection=False)
    try:
        callbacks = SubscriptionEventCallbacks(incompatible_qos=lambda event: None, use_default_callbacks=False)
        subscription = node.create_subscription(String, "chatter", lambda msg: None, qos.RELIABLE,
                                                event_callbacks=callbacks)
        assert list(node.waitables) == subscription.event_handlers
        assert len(subscription.event_handlers) == 1
    finally:
        node.destroy_node()


def test_a_lean_node_still_talks_and_keeps_its_parameters(context):
    node = StackNode("lean", context=context, introspection=False,
                     parameter_overrides=[Parameter("gain", value=2.5)],
                     automatically_declare_parameters_from_overrides=True)
    received = []
    node.create_subscription(String, "chatter", received.append, qos.RELIABLE)
    publisher = node.create_publisher(String, "chatter", qos.RELIABLE)
    executor = SingleThreadedExecutor(context=context)
    executor.add_node(node)
    try:
        assert node.get_parameter("gain").value == 2.5
        for _ in range(50):
            publisher.publish(String(data="hello"))
            executor.spin_once(timeout_sec=0.05)
            if received:
                break
        assert received and received[0].data == "hello"
    finally:
        executor.shutdown()
        node.destroy_node()


def test_create_nodes_builds_every_stack_node_lean_on_request(context):
    stack = load_stack("config/stacks/sim_tabletop.yaml")
    others = type(stack)(stack.name, tuple(n for n in stack.nodes if n.executable in ("semantic_map", "planner")),
                         stack.source)
    nodes = create_nodes(others, context=context, introspection=False)
    try:
        assert [n.get_name() for n in nodes] == ["semantic_map", "planner"]
        for node in nodes:
            assert not node.introspection
            assert not any(name.endswith("/get_parameters") for name in _service_names(node))
            assert not any(type(w).__name__ == "EventHandler" for w in node.waitables)
    finally:
        for node in nodes:
            node.destroy_node()
