"""Launch the stack against real hardware drivers: the stack YAML's nodes minus the simulator."""

from modular_robot.launch_description import generate


def generate_launch_description():
    return generate(use_sim_time=False, skip_executables=("sim_bridge",))
