"""Launch the simulated robot and its stack.

Arguments (`ros2 launch modular_robot sim.launch.py --show-args`): use_sim_time (default true),
namespace, robot, stack, params_file.
"""

from modular_robot.launch_description import generate


def generate_launch_description():
    return generate(use_sim_time=True)
