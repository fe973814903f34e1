"""Launch the stack against real hardware drivers: the robot's stack minus the simulator.

Arguments (`ros2 launch modular_robot bringup.launch.py --show-args`): use_sim_time (default
false), namespace, robot, stack, params_file.
"""

from modular_robot.launch_description import generate


def generate_launch_description():
    return generate(use_sim_time=False, skip_executables=("sim_bridge",))
