"""modular_robot: a talkable embodied-robotics stack on ROS 2."""

__version__ = "0.1.0"
