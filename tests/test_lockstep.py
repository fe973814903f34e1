"""LockstepStack: the sim steps as fast as it can, but never far ahead of what the nodes have received."""

from sensor_msgs.msg import JointState

from modular_robot.core.stack import parse_stack
from modular_robot.harness.lockstep import CHUNK_S, MAX_LAG_S, LockstepStack, StampGate
from modular_robot.ros import qos
from modular_robot.ros.conversions import stamp_to_ns
from modular_robot.scenarios.scenario import parse_scenario

SCENE = parse_scenario("name: lag\ncategory: spine\nrobot: panda_tabletop\nobjects:\n"
                       "  - {id: cube, type: cube, color: red, pose: [0.5, 0.0, 0.0, 0.0]}\n"
                       "expect:\n  - {unmoved: [cube]}\n")


def _stack(clock_rate_hz: float):
    """The sim alone, with a small, slow camera: each step is cheap, so the nodes are the slow side."""
    return parse_stack({"name": "lag", "use_sim_time": True, "nodes": [
        {"name": "sim", "executable": "sim_bridge",
         "parameters": {"camera_width": 64, "camera_height": 48, "camera_rate_hz": 1.0,
                        "clock_rate_hz": clock_rate_hz}}]})


def test_stepping_stays_within_max_lag_of_what_the_nodes_received():
    lockstep = LockstepStack(SCENE, _stack(clock_rate_hz=100.0), renderer="tiny", log=lambda line: None)
    lags = []

    def received(msg: JointState) -> None:
        lags.append(lockstep.world.sim_time - stamp_to_ns(msg.header.stamp) / 1e9)

    try:
        lockstep.client.create_subscription(JointState, "joint_states", received, qos.RELIABLE)
        lockstep.advance(3.0)
        assert lockstep.delivered.enabled
    finally:
        lockstep.close()
    # Every joint state arrives (none falls off a subscriber's queue of 10 while the sim runs ahead),
    # behind /clock by at most a chunk or two of the executor's work.
    assert len(lags) >= 0.95 * 3.0 / 0.01, len(lags)
    assert max(lags) <= MAX_LAG_S + 3 * CHUNK_S, max(lags)


def test_a_clock_slower_than_the_lag_bound_is_waited_for_up_to_its_last_stamp():
    logged = []
    lockstep = LockstepStack(SCENE, _stack(clock_rate_hz=10.0), renderer="tiny", log=logged.append)
    try:
        lockstep.advance(1.0)
        # Each step waits only for the last /clock published, so none times out and stepping goes on
        # waiting for delivery.
        assert lockstep.delivered.enabled and logged == []
    finally:
        lockstep.close()


def test_a_gate_turns_itself_off_after_its_waits_time_out_three_times_in_a_row():
    gate = StampGate(timeout_s=0.01)
    gate.saw(100)
    assert gate.wait(100) and gate.enabled
    assert gate.wait(200) and gate.wait(200)
    # A wait that is answered starts the count again.
    gate.saw(200)
    assert gate.wait(200)
    assert gate.wait(300) and gate.wait(300)
    assert not gate.wait(300) and not gate.enabled
