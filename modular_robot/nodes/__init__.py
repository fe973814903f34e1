"""Thin rclpy nodes: parameters, QoS, message conversion, calls into core."""
