"""Launch the simulated robot and the stack from a stack YAML (default config/stacks/sim_tabletop.yaml)."""

import os

from ament_index_python.packages import get_package_share_directory
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction
from launch.substitutions import LaunchConfiguration
from launch_ros.actions import Node

from modular_robot.launch_description import nodes_for_launch


def _nodes(context):
    stack = LaunchConfiguration("stack").perform(context)
    namespace = LaunchConfiguration("namespace").perform(context)
    return [Node(**entry) for entry in nodes_for_launch(stack, namespace=namespace or None, use_sim_time=True)]


def generate_launch_description():
    share = get_package_share_directory("modular_robot")
    return LaunchDescription([
        DeclareLaunchArgument("stack", default_value=os.path.join(share, "config", "stacks", "sim_tabletop.yaml"),
                              description="Stack YAML: which nodes run with which parameters."),
        DeclareLaunchArgument("namespace", default_value="", description="Robot namespace for every node."),
        OpaqueFunction(function=_nodes),
    ])
