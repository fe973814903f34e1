"""Our interface packages are built and tf2_msgs interoperates with upstream ROS 2."""

import rclpy

UPSTREAM_TF_MESSAGE_HASH = "RIHS01_e369d0f05a23ae52508854b66f6aa0437f3449d652e8cbf22d5abe85d020f087"


def test_tf2_msgs_type_hash_equals_upstream():
    from tf2_msgs.msg import TFMessage

    context = rclpy.Context()
    rclpy.init(context=context)
    try:
        node = rclpy.create_node("hash_probe", context=context)
        node.create_publisher(TFMessage, "tf_hash_probe", 1)
        (info,) = node.get_publishers_info_by_topic(node.resolve_topic_name("tf_hash_probe"))
        assert str(info.topic_type_hash) == UPSTREAM_TF_MESSAGE_HASH
        node.destroy_node()
    finally:
        rclpy.shutdown(context=context)


def test_stack_interfaces_have_the_designed_fields():
    from modular_robot_interfaces.action import ExecuteSkill, ExecuteTask
    from modular_robot_interfaces.msg import ObjectObservationArray, SemanticMap, TaskPlan, Verdict
    from modular_robot_interfaces.srv import QueryObjects

    assert {"text", "max_results"} <= set(QueryObjects.Request.get_fields_and_field_types())
    assert {"objects", "scores"} <= set(QueryObjects.Response.get_fields_and_field_types())
    assert {"task_id", "step_index", "phase", "ok", "confidence", "reason"} <= set(
        Verdict.get_fields_and_field_types())
    assert {"task_id", "instruction", "steps", "revision"} <= set(TaskPlan.get_fields_and_field_types())
    assert "objects" in SemanticMap.get_fields_and_field_types()
    assert "observations" in ObjectObservationArray.get_fields_and_field_types()
    assert set(ExecuteSkill.Goal.get_fields_and_field_types()) == {"skill", "args_json"}
    assert set(ExecuteTask.Result.get_fields_and_field_types()) == {"success", "summary"}
