"""Test isolation for ROS: a private DDS domain per test process, discovery on localhost only."""

import os
import random

# Set before rclpy loads: each pytest process gets its own domain so parallel runs never cross-talk.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from hypothesis import settings  # noqa: E402

# Property tests explore the same examples on every run: a failure in CI reproduces anywhere,
# and no run can pass or fail by the luck of its seed.
settings.register_profile("modular_robot", derandomize=True, database=None)
settings.load_profile("modular_robot")
