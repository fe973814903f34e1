"""LockstepStack: the sim steps as fast as it can, but never far ahead of what the nodes have received."""

from sensor_msgs.msg import JointState

from modular_robot.core.scenario import parse_scenario
from modular_robot.core.stack import parse_stack
from modular_robot.lockstep import CHUNK_S, MAX_LAG_S, LockstepStack
from modular_robot.ros import qos
from modular_robot.ros.conversions import stamp_to_ns

SCENE = parse_scenario("name: lag\ncategory: spine\nrobot: panda_tabletop\nobjects:\n"
                       "  - {id: cube, type: cube, color: red, pose: [0.5, 0.0, 0.0, 0.0]}\n"
                       "expect:\n  - {unmoved: [cube]}\n")
# A small camera keeps each step cheap, so that the nodes, not the renderer, are the slow side.
STACK = parse_stack({"name": "lag", "use_sim_time": True, "nodes": [
    {"name": "sim", "executable": "sim_bridge",
     "parameters": {"camera_width": 64, "camera_height": 48, "camera_rate_hz": 1.0}}]})


def test_stepping_stays_within_max_lag_of_what_the_nodes_received():
    lockstep = LockstepStack(SCENE, STACK, renderer="tiny", log=lambda line: None)
    lags = []

    def received(msg: JointState) -> None:
        lags.append(lockstep.world.sim_time - stamp_to_ns(msg.header.stamp) / 1e9)

    try:
        lockstep.client.create_subscription(JointState, "joint_states", received, qos.RELIABLE)
        lockstep.advance(3.0)
        assert lockstep.wait_for_delivery
    finally:
        lockstep.close()
    # Every joint state arrives (none falls off a subscriber's queue of 10 while the sim runs ahead),
    # behind /clock by at most a chunk or two of the executor's work.
    assert len(lags) >= 0.95 * 3.0 / 0.01, len(lags)
    assert max(lags) <= MAX_LAG_S + 3 * CHUNK_S, max(lags)
