"""Pure logic of the stack: no rclpy, unit-tested without ROS."""
