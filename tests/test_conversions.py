"""Tests of the ROS message conversions (messages only; no rclpy context needed)."""

import math
import time

import numpy as np
import pytest
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Pose, Quaternion
from geometry_msgs.msg import Transform as TransformMsg
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from modular_robot.core.camera import PinholeIntrinsics
from modular_robot.core.tf_tree import TfTree
from modular_robot.core.transforms import Transform
from modular_robot.ros.conversions import (
    camera_info_from_intrinsics,
    depth_image_to_metres,
    image_to_numpy,
    intrinsics_from_camera_info,
    make_transform_stamped,
    msg_to_transform,
    ns_to_stamp,
    numpy_to_image,
    pointcloud2_to_colors,
    pointcloud2_to_points,
    points_to_pointcloud2,
    pose_to_transform,
    stamp_to_ns,
    transform_stamped_to_edge,
    transform_to_msg,
    transform_to_pose,
)

ENCODINGS = {
    "rgb8": (np.uint8, 3),
    "bgr8": (np.uint8, 3),
    "rgba8": (np.uint8, 4),
    "bgra8": (np.uint8, 4),
    "mono8": (np.uint8, 1),
    "mono16": (np.uint16, 1),
    "16UC1": (np.uint16, 1),
    "32FC1": (np.float32, 1),
}


def _random_image(encoding: str, height: int = 5, width: int = 7, seed: int = 0) -> np.ndarray:
    dtype, channels = ENCODINGS[encoding]
    shape = (height, width) if channels == 1 else (height, width, channels)
    rng = np.random.default_rng(seed)
    if dtype == np.float32:
        return rng.normal(size=shape).astype(np.float32)
    return rng.integers(0, np.iinfo(dtype).max, size=shape, endpoint=True, dtype=dtype)


def _padded(msg: Image, pad: int) -> Image:
    """Return a copy of ``msg`` whose rows carry ``pad`` extra garbage bytes."""
    rows = np.frombuffer(msg.data, np.uint8).reshape(msg.height, msg.step)
    garbage = np.full((msg.height, pad), 0xAB, np.uint8)
    padded = Image(header=msg.header, height=msg.height, width=msg.width, encoding=msg.encoding,
                   is_bigendian=msg.is_bigendian, step=msg.step + pad)
    padded.data = np.hstack([rows, garbage]).tobytes()
    return padded


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_image_round_trip_for_every_encoding(encoding):
    array = _random_image(encoding)
    msg = numpy_to_image(array, encoding, frame_id="camera", stamp=1_500_000_000)
    dtype, channels = ENCODINGS[encoding]
    assert (msg.height, msg.width, msg.encoding) == (5, 7, encoding)
    assert msg.step == 7 * channels * np.dtype(dtype).itemsize
    assert len(msg.data) == msg.step * msg.height
    assert msg.header.frame_id == "camera"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (1, 500_000_000)
    back = image_to_numpy(msg)
    assert back.dtype == dtype
    np.testing.assert_array_equal(back, array)


@pytest.mark.parametrize("encoding", list(ENCODINGS))
@pytest.mark.parametrize("pad", [1, 3, 8])
def test_padded_rows_are_honoured(encoding, pad):
    array = _random_image(encoding, seed=pad)
    padded = _padded(numpy_to_image(array, encoding), pad)
    np.testing.assert_array_equal(image_to_numpy(padded), array)


def test_image_to_numpy_is_zero_copy_for_native_data():
    msg = numpy_to_image(_random_image("rgb8", 48, 64), "rgb8")
    view = image_to_numpy(msg)
    assert np.shares_memory(view, np.frombuffer(msg.data, np.uint8))
    assert view.shape == (48, 64, 3)


@pytest.mark.parametrize("encoding", ["16UC1", "32FC1"])
def test_big_endian_images_are_decoded_to_native_order(encoding):
    array = _random_image(encoding)
    msg = Image(height=5, width=7, encoding=encoding, is_bigendian=1, step=7 * array.itemsize)
    msg.data = array.astype(array.dtype.newbyteorder(">")).tobytes()
    back = image_to_numpy(msg)
    assert back.dtype.isnative
    np.testing.assert_array_equal(back, array)
    # And a big-endian array is published as such.
    out = numpy_to_image(array.astype(array.dtype.newbyteorder(">")), encoding)
    assert out.is_bigendian == 1
    np.testing.assert_array_equal(image_to_numpy(out), array)


def test_one_channel_images_accept_a_trailing_channel_axis():
    array = _random_image("mono8")
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(array[..., None], "mono8")), array)


def test_bad_images_raise_value_errors():
    msg = numpy_to_image(_random_image("rgb8"), "rgb8")
    msg.encoding = "yuv422"
    with pytest.raises(ValueError, match="unsupported image encoding 'yuv422'"):
        image_to_numpy(msg)
    short = numpy_to_image(_random_image("rgb8"), "rgb8")
    short.data = bytes(len(short.data) - 1)
    with pytest.raises(ValueError, match="expected step \\* height"):
        image_to_numpy(short)
    narrow = numpy_to_image(_random_image("rgb8"), "rgb8")
    narrow.step -= 1
    with pytest.raises(ValueError, match="shorter than a row"):
        image_to_numpy(narrow)
    with pytest.raises(ValueError, match="needs uint8"):
        numpy_to_image(np.zeros((4, 4, 3), np.float64), "rgb8")
    with pytest.raises(ValueError, match=r"shape \(height, width, 3\)"):
        numpy_to_image(np.zeros((4, 4), np.uint8), "rgb8")
    with pytest.raises(ValueError, match=r"shape \(height, width\)"):
        numpy_to_image(np.zeros((4, 4, 3), np.float32), "32FC1")
    with pytest.raises(ValueError, match="not both"):
        numpy_to_image(np.zeros((4, 4), np.uint8), "mono8", header=Header(), frame_id="x")


def test_header_is_copied_not_shared():
    header = Header(stamp=Time(sec=3, nanosec=4), frame_id="cam")
    msg = numpy_to_image(np.zeros((2, 2), np.uint8), "mono8", header=header)
    header.frame_id = "changed"
    assert msg.header.frame_id == "cam" and msg.header.stamp.sec == 3


def test_depth_image_to_metres_marks_invalid_as_nan():
    mm = np.array([[0, 1500, 65535]], np.uint16)
    metres = depth_image_to_metres(numpy_to_image(mm, "16UC1"))
    assert metres.dtype == np.float32
    assert np.isnan(metres[0, 0])
    np.testing.assert_allclose(metres[0, 1:], [1.5, 65.535], rtol=1e-6)
    raw = np.array([[np.nan, 0.0, np.inf, -1.0, 2.25]], np.float32)
    msg = numpy_to_image(raw, "32FC1")
    metres = depth_image_to_metres(msg)
    assert np.isnan(metres[0, :4]).all() and metres[0, 4] == 2.25
    metres[0, 4] = 7.0  # the result is a copy: writing must not touch the message
    assert image_to_numpy(msg)[0, 4] == 2.25
    with pytest.raises(ValueError, match="32FC1 or 16UC1"):
        depth_image_to_metres(numpy_to_image(np.zeros((2, 2), np.uint8), "mono8"))


def test_image_conversions_are_vectorised():
    # Per-element Python conversion of a 1920x1080 RGB image takes seconds; bytes take milliseconds.
    array = _random_image("rgb8", 1080, 1920)
    start = time.perf_counter()
    msg = numpy_to_image(array, "rgb8")
    back = image_to_numpy(msg)
    assert time.perf_counter() - start < 0.25
    np.testing.assert_array_equal(back, array)


def test_pointcloud2_round_trip_without_colours():
    points = np.random.default_rng(1).normal(size=(100, 3)).astype(np.float32)
    msg = points_to_pointcloud2(points, Header(frame_id="map"))
    assert [(f.name, f.offset, f.datatype) for f in msg.fields] == [
        ("x", 0, PointField.FLOAT32), ("y", 4, PointField.FLOAT32), ("z", 8, PointField.FLOAT32)]
    assert (msg.height, msg.width, msg.point_step, msg.row_step) == (1, 100, 12, 1200)
    assert msg.is_dense and msg.header.frame_id == "map"
    np.testing.assert_array_equal(pointcloud2_to_points(msg), points)


def test_pointcloud2_round_trip_with_packed_colours():
    points = np.random.default_rng(2).normal(size=(50, 3)).astype(np.float32)
    points[3] = np.nan
    colors = np.random.default_rng(3).integers(0, 256, size=(50, 3), dtype=np.uint8)
    colors[0] = [255, 0, 128]
    msg = points_to_pointcloud2(points, Header(), colors)
    assert msg.fields[3].name == "rgb" and msg.fields[3].datatype == PointField.FLOAT32
    assert msg.point_step == 16 and not msg.is_dense
    packed = np.frombuffer(msg.data, np.uint32).reshape(50, 4)[:, 3]
    assert packed[0] == 0xFF0080
    np.testing.assert_array_equal(pointcloud2_to_points(msg), points)
    np.testing.assert_array_equal(pointcloud2_to_colors(msg), colors)


def test_pointcloud2_with_padded_rows_float64_fields_and_big_endian():
    height, width = 2, 3
    xyz = np.arange(height * width * 3, dtype=np.float64).reshape(-1, 3)
    record = np.dtype({"names": ["x", "y", "z"], "formats": [">f8"] * 3,
                       "offsets": [0, 8, 16], "itemsize": 32})
    cloud = np.zeros(height * width, record)
    cloud["x"], cloud["y"], cloud["z"] = xyz.T
    rows = cloud.view(np.uint8).reshape(height, width * 32)
    msg = PointCloud2(height=height, width=width, is_bigendian=True, point_step=32,
                      row_step=width * 32 + 5,
                      fields=[PointField(name=n, offset=8 * i, datatype=PointField.FLOAT64, count=1)
                              for i, n in enumerate("xyz")])
    msg.data = np.hstack([rows, np.zeros((height, 5), np.uint8)]).tobytes()
    np.testing.assert_array_equal(pointcloud2_to_points(msg), xyz.astype(np.float32))


def test_bad_pointclouds_raise_value_errors():
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        points_to_pointcloud2(np.zeros((5, 2)), Header())
    with pytest.raises(ValueError, match="uint8"):
        points_to_pointcloud2(np.zeros((5, 3)), Header(), np.zeros((5, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(5, 3\)"):
        points_to_pointcloud2(np.zeros((5, 3)), Header(), np.zeros((4, 3), np.uint8))
    msg = points_to_pointcloud2(np.zeros((5, 3)), Header())
    with pytest.raises(ValueError, match="no 'rgb' field"):
        pointcloud2_to_colors(msg)
    msg.data = bytes(len(msg.data) + 4)
    with pytest.raises(ValueError, match="expected row_step"):
        pointcloud2_to_points(msg)


def test_transform_and_pose_messages_round_trip():
    t = Transform.from_xyz_rpy(1.0, -2.0, 3.0, 0.1, 0.2, 0.3)
    msg = transform_to_msg(t)
    assert isinstance(msg, TransformMsg)
    assert (msg.translation.x, msg.rotation.w) == (1.0, t.rotation[3])
    assert msg_to_transform(msg).allclose(t)
    pose = transform_to_pose(t)
    assert isinstance(pose, Pose)
    assert pose_to_transform(pose).allclose(t)
    with pytest.raises(ValueError):
        pose_to_transform(Pose(orientation=Quaternion(x=0.0, y=0.0, z=0.0, w=0.0)))


def test_transform_stamped_feeds_a_tf_tree():
    t = Transform.from_xyz_rpy(0.5, 0.0, 0.2, yaw=math.pi / 3)
    msg = make_transform_stamped(t, "odom", "base_link", 2_000_000_001)
    assert (msg.header.frame_id, msg.child_frame_id) == ("odom", "base_link")
    parent, child, stamp_ns, transform = transform_stamped_to_edge(msg)
    assert (parent, child, stamp_ns) == ("odom", "base_link", 2_000_000_001)
    tree = TfTree()
    tree.set_transform(parent, child, stamp_ns, transform)
    assert tree.lookup("odom", "base_link", stamp_ns).allclose(t)


def test_camera_info_round_trip():
    intr = PinholeIntrinsics(640, 480, 525.0, 526.0, 319.5, 239.5)
    info = camera_info_from_intrinsics(intr, Header(frame_id="camera_color_optical_frame"))
    assert isinstance(info, CameraInfo)
    assert info.distortion_model == "plumb_bob" and list(info.d) == [0.0] * 5
    np.testing.assert_array_equal(np.asarray(info.r).reshape(3, 3), np.eye(3))
    np.testing.assert_array_equal(info.p, [525.0, 0, 319.5, 0, 0, 526.0, 239.5, 0, 0, 0, 1, 0])
    assert (info.width, info.height) == (640, 480)
    assert info.header.frame_id == "camera_color_optical_frame"
    assert intrinsics_from_camera_info(info) == intr


def test_intrinsics_from_unusable_camera_info_raise():
    with pytest.raises(ValueError, match="focal"):
        intrinsics_from_camera_info(CameraInfo(width=640, height=480, k=[0.0] * 8 + [1.0]))
    info = camera_info_from_intrinsics(PinholeIntrinsics(64, 48, 50, 50, 32, 24), Header())
    info.binning_x = 2
    with pytest.raises(ValueError, match="binning"):
        intrinsics_from_camera_info(info)


def test_stamp_conversions():
    assert stamp_to_ns(Time(sec=12, nanosec=345)) == 12_000_000_345
    stamp = ns_to_stamp(12_000_000_345)
    assert (stamp.sec, stamp.nanosec) == (12, 345)
    assert stamp_to_ns(ns_to_stamp(0)) == 0
    with pytest.raises(ValueError, match="non-negative"):
        ns_to_stamp(-1)
    with pytest.raises(ValueError, match="int32"):
        ns_to_stamp(2**31 * 1_000_000_000)
