"""Install the modular_robot ament_python package (also pip-installable)."""

from glob import glob

from setuptools import find_packages, setup

PACKAGE = "modular_robot"

setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["tests", "tests.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        (f"share/{PACKAGE}/launch", glob("launch/*.launch.py")),
        (f"share/{PACKAGE}/config", glob("config/*.xml")),
        (f"share/{PACKAGE}/config/stacks", glob("config/stacks/*.yaml")),
        (f"share/{PACKAGE}/sim/scenarios", glob("sim/scenarios/*.yaml")),
    ],
    install_requires=["setuptools"],
    zip_safe=True,
    maintainer="modular_robot developers",
    maintainer_email="dev@modular-robot.invalid",
    description="A talkable embodied-robotics stack on ROS 2 with a PyBullet hardware-in-the-loop simulation.",
    license="Apache-2.0",
    entry_points={
        "console_scripts": [
            "modular-robot = modular_robot.cli:main",
            "sim_bridge = modular_robot.sim.bridge_node:main",
            "perception = modular_robot.nodes.perception_node:main",
            "semantic_map = modular_robot.nodes.semantic_map_node:main",
            "safety_shield = modular_robot.nodes.safety_shield_node:main",
            "critic = modular_robot.nodes.critic_node:main",
            "skill_server = modular_robot.nodes.skill_server_node:main",
            "chat = modular_robot.nodes.chat_node:main",
            "planner = modular_robot.nodes.planner_node:main",
        ],
    },
)
