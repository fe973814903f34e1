"""Launch the simulated robot and the stack from a stack YAML (argument `stack`, `namespace`)."""

from modular_robot.launch_description import generate


def generate_launch_description():
    return generate(use_sim_time=True)
