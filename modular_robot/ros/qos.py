"""Named QoS profiles used across the stack's nodes."""

from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_profile_sensor_data,
)

# Camera images and other high-rate sensor streams: best effort, keep the freshest few.
SENSOR_DATA = qos_profile_sensor_data

# Commands and state that must not be dropped (trajectories, joint_states, odom).
RELIABLE = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)

# Latched state: maps, static transforms, emergency stop. Late joiners get the last value.
LATCHED = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                     durability=DurabilityPolicy.TRANSIENT_LOCAL)

# /tf as tf2_ros publishes and subscribes it.
TF = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                durability=DurabilityPolicy.VOLATILE)

# /tf_static as tf2_ros's static broadcaster: all static transforms in one latched message.
TF_STATIC = QoSProfile(depth=1, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                       durability=DurabilityPolicy.TRANSIENT_LOCAL)

# /tf_static as tf2_ros's listener takes it: deep enough for every latched publisher's message.
TF_STATIC_LISTENER = QoSProfile(depth=100, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                                durability=DurabilityPolicy.TRANSIENT_LOCAL)

# /clock from the simulator.
CLOCK = QoSProfile(depth=10, history=HistoryPolicy.KEEP_LAST, reliability=ReliabilityPolicy.RELIABLE,
                   durability=DurabilityPolicy.VOLATILE)
