"""Test isolation for ROS: a private DDS domain per test process, discovery on localhost only."""

import os
import random

# Set before rclpy loads: each pytest process gets its own domain so parallel runs never cross-talk.
os.environ.setdefault("ROS_DOMAIN_ID", str(random.Random(os.getpid()).randint(1, 100)))
os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
os.environ.setdefault("HF_HUB_OFFLINE", "1")
