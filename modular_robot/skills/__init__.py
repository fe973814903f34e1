"""Robot skills as functions of injected arm, world-model and speech interfaces (no rclpy, no simulator)."""
