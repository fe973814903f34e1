"""Perception on a loaded machine: after a slow frame it processes the newest frame, not a queued one."""

import threading
import time

import numpy as np
import rclpy
from geometry_msgs.msg import TransformStamped
from rclpy.executors import MultiThreadedExecutor
from rclpy.parameter import Parameter
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from modular_robot.core.camera import PinholeIntrinsics
from modular_robot.nodes.perception_node import PerceptionNode
from modular_robot.ros import qos
from modular_robot.ros.conversions import camera_info_from_intrinsics, ns_to_stamp, numpy_to_image, stamp_to_ns

PERIOD_NS = 100_000_000
OPTICAL = "camera_color_optical_frame"


class _BlockingDetector:
    """A detector that holds its first frame until released: a frame that takes long on a busy machine."""

    name = "blocking"

    def __init__(self) -> None:
        self.stamps: list[int] = []
        self.release = threading.Event()

    def detect(self, frame, prompts):
        self.stamps.append(frame.stamp_ns)
        if len(self.stamps) == 1:
            self.release.wait(10.0)
        return []


def _until(condition, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.01)
    return condition()


def test_frames_that_arrive_during_a_slow_detection_leave_only_the_newest_for_the_next():
    # The camera subscriptions shared the processing callback's group: while a frame was processed
    # none was taken, DDS queued the sensor-data depth of 5 per stream, and the next detection ran
    # on the oldest of them. Measured live under a CPU hog: observations up to 1.1 s of sim time
    # behind the clock, and the critic judged a place from frames taken before the arm retreated.
    context = rclpy.Context()
    rclpy.init(context=context)
    perception = PerceptionNode(context=context, parameter_overrides=[Parameter("self_filter", value="none")])
    camera_node = rclpy.create_node("camera", context=context)
    executor = MultiThreadedExecutor(num_threads=2, context=context)
    executor.add_node(perception)
    spinning = threading.Thread(target=executor.spin, daemon=True)
    detector = _BlockingDetector()
    try:
        perception.detector = detector
        camera = TransformStamped(header=Header(frame_id="map"), child_frame_id=OPTICAL)
        camera.transform.rotation.w = 1.0
        perception.tf.add_transforms([camera], static=True)
        intrinsics = PinholeIntrinsics(width=64, height=48, fx=60.0, fy=60.0, cx=32.0, cy=24.0)
        pubs = {"color": camera_node.create_publisher(Image, "camera/color/image_raw", qos.SENSOR_DATA),
                "depth": camera_node.create_publisher(Image, "camera/depth/image_raw", qos.SENSOR_DATA),
                "info": camera_node.create_publisher(CameraInfo, "camera/color/camera_info", qos.SENSOR_DATA)}

        def publish(index: int) -> int:
            header = Header(frame_id=OPTICAL, stamp=ns_to_stamp((index + 1) * PERIOD_NS))
            pubs["color"].publish(numpy_to_image(np.zeros((48, 64, 3), np.uint8), "rgb8", header=header))
            pubs["depth"].publish(numpy_to_image(np.full((48, 64), 1.0, np.float32), "32FC1", header=header))
            pubs["info"].publish(camera_info_from_intrinsics(intrinsics, header))
            return stamp_to_ns(header.stamp)

        assert _until(lambda: all(p.get_subscription_count() for p in pubs.values()), 10.0)
        spinning.start()
        publish(0)
        assert _until(lambda: detector.stamps, 10.0), "the first frame was not processed"
        newest = [publish(i) for i in range(1, 9)][-1]
        # While the first detection runs, the frames keep being taken; the newest waits for the next.
        arrived = _until(lambda: perception._frame is not None
                         and stamp_to_ns(perception._frame["color"].header.stamp) == newest, 5.0)
        detector.release.set()
        assert _until(lambda: len(detector.stamps) >= 2, 10.0), "no frame was processed after the slow one"
        assert detector.stamps[1] == newest, (f"processed the frame stamped {detector.stamps[1] / 1e9:.1f} s after "
                                              f"the slow one, not the newest ({newest / 1e9:.1f} s)")
        assert arrived, "the frames published during the slow detection were not taken meanwhile"
    finally:
        detector.release.set()
        executor.shutdown()
        spinning.join(timeout=5.0)
        camera_node.destroy_node()
        perception.destroy_node()
        rclpy.shutdown(context=context)
