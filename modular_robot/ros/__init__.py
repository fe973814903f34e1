"""ROS adapters: message conversions and the TF listener, kept apart from the pure core."""
