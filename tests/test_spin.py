"""Shutting a node down with Ctrl-C is not an error, whatever a callback was doing at the time."""

import pytest
import rclpy
from rclpy._rclpy_pybind11 import RCLError
from rclpy.context import Context

from modular_robot.ros.spin import raise_unless_shut_down


def _fail_and_judge(context: Context) -> None:
    try:
        raise RCLError("Failed to publish: publisher's context is invalid")
    except RCLError:
        raise_unless_shut_down(context)


def test_a_publish_that_fails_because_ctrl_c_shut_the_context_down_ends_quietly():
    # The fresh-clone CI's `up --in-process` exited 1 when Ctrl-C landed while the sim published a frame.
    context = Context()
    rclpy.init(context=context)
    rclpy.shutdown(context=context)
    _fail_and_judge(context)


def test_a_failure_while_the_context_runs_is_raised():
    context = Context()
    rclpy.init(context=context)
    try:
        with pytest.raises(RCLError):
            _fail_and_judge(context)
    finally:
        rclpy.shutdown(context=context)
