"""Install the modular_robot ament_python package (also pip-installable)."""

from pathlib import Path

from setuptools import find_packages, setup

PACKAGE = "modular_robot"
HERE = Path(__file__).resolve().parent
# Folders read at run time from share/modular_robot (modular_robot/paths.py): every file in them is
# installed, found by walking them, so a new config or scenario file can never be left out.
SHARED_FOLDERS = ("config", "launch", "sim")


def share_data_files() -> list[tuple[str, list[str]]]:
    """Return one data_files entry per folder under SHARED_FOLDERS, mirrored into share/modular_robot."""
    by_folder: dict[str, list[str]] = {}
    for folder in SHARED_FOLDERS:
        for path in sorted((HERE / folder).rglob("*")):
            relative = path.relative_to(HERE)
            if path.is_file() and "__pycache__" not in relative.parts:
                by_folder.setdefault(f"share/{PACKAGE}/{relative.parent.as_posix()}", []).append(relative.as_posix())
    return sorted(by_folder.items())


setup(
    name=PACKAGE,
    version="0.1.0",
    packages=find_packages(exclude=["tests", "tests.*"]),
    data_files=[
        ("share/ament_index/resource_index/packages", [f"resource/{PACKAGE}"]),
        (f"share/{PACKAGE}", ["package.xml"]),
        *share_data_files(),
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
