"""Conversions between ROS messages and the core's numpy types.

Imports message classes only, never rclpy, so it works in any process that has the message
packages. Pixel and point buffers go through ``np.frombuffer`` and ``ndarray.tobytes``: building
Python lists per element is two orders of magnitude slower on camera-sized data.
"""

from __future__ import annotations

import sys

import numpy as np
from builtin_interfaces.msg import Time
from geometry_msgs.msg import Point, Pose, Quaternion, TransformStamped, Vector3
from geometry_msgs.msg import Transform as TransformMsg
from numpy.typing import ArrayLike, NDArray
from sensor_msgs.msg import CameraInfo, Image, PointCloud2, PointField
from std_msgs.msg import Header

from modular_robot.core.camera import PinholeIntrinsics
from modular_robot.core.transforms import Transform

_NS_PER_S = 1_000_000_000
_INT32_MAX = 2**31 - 1

# encoding -> (element type, channels), after sensor_msgs/image_encodings.hpp.
_IMAGE_ENCODINGS: dict[str, tuple[np.dtype, int]] = {
    "rgb8": (np.dtype(np.uint8), 3),
    "bgr8": (np.dtype(np.uint8), 3),
    "rgba8": (np.dtype(np.uint8), 4),
    "bgra8": (np.dtype(np.uint8), 4),
    "mono8": (np.dtype(np.uint8), 1),
    "mono16": (np.dtype(np.uint16), 1),
    "16UC1": (np.dtype(np.uint16), 1),
    "32FC1": (np.dtype(np.float32), 1),
    "32SC1": (np.dtype(np.int32), 1),
}

_MM_PER_M = 1000.0
# Colour encodings and the channel order that makes them RGB.
_RGB_CHANNELS: dict[str, list[int]] = {"rgb8": [0, 1, 2], "rgba8": [0, 1, 2], "bgr8": [2, 1, 0], "bgra8": [2, 1, 0]}
# A geometry_msgs/Quaternion of a transform is refused when its norm is farther than this from 1.
UNIT_QUATERNION_TOLERANCE = 1e-3
# Longest excerpt of an input quoted in a log line or an error message.
CLIP_CHARS = 200

_POINT_FIELD_TYPES: dict[int, str] = {
    PointField.INT8: "i1",
    PointField.UINT8: "u1",
    PointField.INT16: "i2",
    PointField.UINT16: "u2",
    PointField.INT32: "i4",
    PointField.UINT32: "u4",
    PointField.FLOAT32: "f4",
    PointField.FLOAT64: "f8",
}


class MalformedMessageError(ValueError):
    """A message that cannot be converted, with the kind of defect for counting.

    Attributes:
        cause: One word naming the defect: ``encoding``, ``size``, ``empty``, ``camera_info``,
            ``transform``.
    """

    def __init__(self, cause: str, message: str) -> None:
        super().__init__(message)
        self.cause = cause


def clip(text: object, limit: int = CLIP_CHARS) -> str:
    """Return ``str(text)`` cut to ``limit`` characters with the length it had, for logs.

    A faulty or hostile publisher sends megabyte strings; echoing them whole makes megabyte log lines.
    """
    text = str(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}... ({len(text)} characters)"


def stamp_to_ns(stamp: Time) -> int:
    """Return a builtin_interfaces/Time as integer nanoseconds."""
    return stamp.sec * _NS_PER_S + stamp.nanosec


def ns_to_stamp(stamp_ns: int) -> Time:
    """Return integer nanoseconds as a builtin_interfaces/Time.

    Raises:
        ValueError: if the time is negative or past the int32 seconds range of the message.
    """
    stamp_ns = int(stamp_ns)
    if stamp_ns < 0:
        raise ValueError(f"stamp must be non-negative, got {stamp_ns} ns")
    sec, nanosec = divmod(stamp_ns, _NS_PER_S)
    if sec > _INT32_MAX:
        raise ValueError(
            f"stamp {stamp_ns} ns does not fit builtin_interfaces/Time (int32 seconds)"
        )
    return Time(sec=sec, nanosec=nanosec)


def _image_format(encoding: str) -> tuple[np.dtype, int]:
    try:
        return _IMAGE_ENCODINGS[encoding]
    except KeyError:
        supported = ", ".join(_IMAGE_ENCODINGS)
        raise MalformedMessageError(
            "encoding", f"unsupported image encoding {clip(encoding)!r}; supported: {supported}"
        ) from None


def image_to_numpy(msg: Image) -> NDArray:
    """Return the pixels of a sensor_msgs/Image as a numpy array.

    The array is ``(height, width)`` for one-channel encodings and ``(height, width, channels)``
    otherwise, with the encoding's raw element type (16UC1 depth stays uint16 millimetres; see
    ``depth_image_to_metres``). Channel order is the encoding's (bgr8 stays BGR).

    When the data is in native byte order the result is a view of ``msg.data`` without a copy,
    including padded rows; copy it before keeping it beyond the message or writing to it.

    Raises:
        MalformedMessageError: (a ValueError) for an unsupported encoding, a ``step`` shorter than
            a row, or a data length other than ``step * height``.
    """
    dtype, channels = _image_format(msg.encoding)
    dtype = dtype.newbyteorder(">" if msg.is_bigendian else "<")
    height, width, step = msg.height, msg.width, msg.step
    row_bytes = width * channels * dtype.itemsize
    if step < row_bytes:
        raise MalformedMessageError(
            "size", f"image step {step} is shorter than a row of {width} {msg.encoding} pixels "
            f"({row_bytes} bytes)"
        )
    if len(msg.data) != step * height:
        raise MalformedMessageError(
            "size", f"image data holds {len(msg.data)} bytes, expected step * height = {step} * {height} "
            f"= {step * height}"
        )
    shape = (height, width) if channels == 1 else (height, width, channels)
    if height == 0 or width == 0:
        return np.empty(shape, dtype=dtype.newbyteorder("="))
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(height, step)[:, :row_bytes]
    # Viewing the byte rows as the element type keeps the row stride, so padding costs no copy.
    pixels = rows.view(dtype).reshape(shape)
    if not dtype.isnative:
        pixels = pixels.astype(dtype.newbyteorder("="))
    return pixels


def color_image_to_rgb(msg: Image) -> NDArray[np.uint8]:
    """Return a colour image as an ``(height, width, 3)`` uint8 RGB array.

    rgb8 and rgba8 come out as views of the message (alpha dropped); bgr8 and bgra8 as copies in
    RGB order.

    Raises:
        MalformedMessageError: (a ValueError) for a non-colour encoding (mono8, depth) or a
            malformed image.
    """
    if msg.encoding not in _RGB_CHANNELS:
        raise MalformedMessageError(
            "encoding", f"colour images must be {', '.join(_RGB_CHANNELS)}, got {clip(msg.encoding)!r}"
        )
    pixels = image_to_numpy(msg)
    channels = _RGB_CHANNELS[msg.encoding]
    return pixels[:, :, :3] if channels == [0, 1, 2] else pixels[:, :, channels]


def depth_image_to_metres(msg: Image) -> NDArray[np.float32]:
    """Return a depth image as float32 metres with NaN where the depth is invalid.

    32FC1 is taken as metres and 16UC1 as millimetres (REP-118). Zero, negative, NaN and
    infinite depths all become NaN. The result is a new, writable array.

    Raises:
        MalformedMessageError: (a ValueError) for an encoding other than 32FC1 or 16UC1, or a
            malformed image.
    """
    if msg.encoding == "32FC1":
        depth = np.array(image_to_numpy(msg), dtype=np.float32)
    elif msg.encoding == "16UC1":
        depth = image_to_numpy(msg).astype(np.float32) / np.float32(_MM_PER_M)
    else:
        raise MalformedMessageError(
            "encoding", f"depth images must be 32FC1 or 16UC1, got {clip(msg.encoding)!r}"
        )
    # Comparisons with NaN are false, so this keeps exactly the finite positive depths.
    depth[~((depth > 0.0) & (depth < np.inf))] = np.nan
    return depth


def _make_header(header: Header | None, frame_id: str, stamp: Time | int | None) -> Header:
    if header is not None:
        if frame_id or stamp is not None:
            raise ValueError("give either header or frame_id/stamp, not both")
        return Header(stamp=Time(sec=header.stamp.sec, nanosec=header.stamp.nanosec),
                      frame_id=header.frame_id)
    if stamp is None:
        stamp = Time()
    elif not isinstance(stamp, Time):
        stamp = ns_to_stamp(stamp)
    return Header(stamp=stamp, frame_id=frame_id)


def numpy_to_image(
    array: ArrayLike,
    encoding: str,
    header: Header | None = None,
    frame_id: str = "",
    stamp: Time | int | None = None,
) -> Image:
    """Return a sensor_msgs/Image holding a copy of ``array``.

    Args:
        array: ``(height, width)`` or ``(height, width, 1)`` for one-channel encodings,
            ``(height, width, channels)`` otherwise, with exactly the encoding's element type
            (uint8, uint16 or float32; either byte order).
        encoding: One of rgb8, bgr8, rgba8, bgra8, mono8, mono16, 16UC1, 32FC1.
        header: Header to copy into the message; excludes ``frame_id`` and ``stamp``.
        frame_id: Frame of the image when no header is given.
        stamp: Time of the image (a Time message or integer nanoseconds) when no header is given.

    Raises:
        ValueError: for an unsupported encoding, a shape or element type that does not fit the
            encoding, or both a header and frame_id/stamp.
    """
    dtype, channels = _image_format(encoding)
    arr = np.asarray(array)
    if arr.dtype.newbyteorder("=") != dtype:
        raise ValueError(
            f"{encoding} needs {dtype.name} elements, got {arr.dtype.name}; convert explicitly "
            "so that no value is silently truncated"
        )
    one_channel_shapes = arr.ndim == 2 or (arr.ndim == 3 and arr.shape[2] == 1)
    if (channels == 1 and not one_channel_shapes) or (
        channels > 1 and (arr.ndim != 3 or arr.shape[2] != channels)
    ):
        expected = "(height, width)" if channels == 1 else f"(height, width, {channels})"
        raise ValueError(f"{encoding} needs an array of shape {expected}, got {arr.shape}")
    byte_order = arr.dtype.byteorder
    big_endian = byte_order == ">" or (byte_order == "=" and sys.byteorder == "big")
    msg = Image()
    msg.header = _make_header(header, frame_id, stamp)
    msg.height, msg.width = int(arr.shape[0]), int(arr.shape[1])
    msg.encoding = encoding
    msg.is_bigendian = int(big_endian)
    msg.step = msg.width * channels * dtype.itemsize
    # Assigning bytes is fast; assigning the array itself makes rclpy iterate element by element.
    msg.data = np.ascontiguousarray(arr).tobytes()
    return msg


def points_to_pointcloud2(
    points: ArrayLike, header: Header, colors: ArrayLike | None = None
) -> PointCloud2:
    """Return an unordered sensor_msgs/PointCloud2 of ``points``.

    Args:
        points: ``(N, 3)`` coordinates in metres, in ``header.frame_id``; cast to float32.
        header: Header of the cloud.
        colors: Optional ``(N, 3)`` uint8 RGB colours, stored as the PCL-style ``rgb`` field
            (``0x00RRGGBB`` packed into the bits of a float32).

    Raises:
        ValueError: if the shapes or the colour type are wrong.
    """
    pts = np.asarray(points)
    if pts.ndim != 2 or pts.shape[1] != 3:
        raise ValueError(f"points must have shape (N, 3), got {pts.shape}")
    pts = np.ascontiguousarray(pts, dtype="<f4")
    n = pts.shape[0]
    fields = [
        PointField(name=name, offset=4 * i, datatype=PointField.FLOAT32, count=1)
        for i, name in enumerate("xyz")
    ]
    if colors is None:
        data = pts
    else:
        rgb = np.asarray(colors)
        if rgb.shape != (n, 3):
            raise ValueError(f"colors must have shape ({n}, 3) to match points, got {rgb.shape}")
        if rgb.dtype != np.uint8:
            raise ValueError(f"colors must be uint8, got {rgb.dtype.name}")
        rgb = rgb.astype("<u4")
        packed = (rgb[:, 0] << 16) | (rgb[:, 1] << 8) | rgb[:, 2]
        # Built as uint32 so the packed colour bits are copied exactly, never as float values.
        data = np.empty((n, 4), dtype="<u4")
        data[:, :3] = pts.view("<u4")
        data[:, 3] = packed
        fields.append(PointField(name="rgb", offset=12, datatype=PointField.FLOAT32, count=1))
    msg = PointCloud2()
    msg.header = _make_header(header, "", None)
    msg.height = 1
    msg.width = n
    msg.fields = fields
    msg.is_bigendian = False
    msg.point_step = data.shape[1] * 4
    msg.row_step = msg.point_step * n
    msg.is_dense = bool(np.isfinite(pts).all())
    msg.data = data.tobytes()
    return msg


def _cloud_fields(
    msg: PointCloud2, names: tuple[str, ...], reinterpret: str | None = None
) -> NDArray:
    """Return one structured record per point holding the named fields, in row-major order.

    Args:
        msg: The cloud.
        names: Fields to extract.
        reinterpret: Numpy type code (such as ``"u4"``) to read every field's bytes as, instead of
            its declared type; it must have the declared type's size.
    """
    by_name = {f.name: f for f in msg.fields}
    order = ">" if msg.is_bigendian else "<"
    formats = []
    offsets = []
    for name in names:
        pf = by_name.get(name)
        if pf is None:
            raise ValueError(
                f"point cloud has no {name!r} field (fields: {', '.join(by_name) or 'none'})"
            )
        if pf.datatype not in _POINT_FIELD_TYPES:
            raise ValueError(f"point field {name!r} has unknown datatype {pf.datatype}")
        fmt = np.dtype(order + _POINT_FIELD_TYPES[pf.datatype])
        if reinterpret is not None:
            declared_size = fmt.itemsize
            fmt = np.dtype(order + reinterpret)
            if fmt.itemsize != declared_size:
                raise ValueError(
                    f"point field {name!r} has {declared_size} bytes, expected {fmt.itemsize}"
                )
        if pf.offset + fmt.itemsize > msg.point_step:
            raise ValueError(
                f"point field {name!r} at offset {pf.offset} overruns point_step {msg.point_step}"
            )
        formats.append(fmt)
        offsets.append(pf.offset)
    record = np.dtype(
        {"names": list(names), "formats": formats, "offsets": offsets, "itemsize": msg.point_step}
    )
    row_bytes = msg.width * msg.point_step
    if msg.row_step < row_bytes:
        raise ValueError(
            f"row_step {msg.row_step} is shorter than width * point_step = {row_bytes}"
        )
    if len(msg.data) != msg.row_step * msg.height:
        raise ValueError(
            f"point cloud data holds {len(msg.data)} bytes, expected row_step * height = "
            f"{msg.row_step * msg.height}"
        )
    if msg.width == 0 or msg.height == 0:
        return np.empty(0, dtype=record)
    rows = np.frombuffer(msg.data, dtype=np.uint8).reshape(msg.height, msg.row_step)
    if msg.row_step == row_bytes:
        return rows.reshape(-1).view(record)
    # Padded rows: drop the padding (one copy), then every point_step bytes is one record.
    return np.ascontiguousarray(rows[:, :row_bytes]).reshape(-1).view(record)


def pointcloud2_to_points(msg: PointCloud2) -> NDArray[np.float32]:
    """Return the ``(N, 3)`` float32 x, y, z of every point in a PointCloud2, NaNs included.

    N is ``width * height``; ordered clouds come out row by row. Any numeric field type is read.

    Raises:
        ValueError: if x, y or z is missing, or the sizes disagree.
    """
    records = _cloud_fields(msg, ("x", "y", "z"))
    points = np.empty((records.shape[0], 3), dtype=np.float32)
    for column, name in enumerate("xyz"):
        points[:, column] = records[name]
    return points


def pointcloud2_to_colors(msg: PointCloud2) -> NDArray[np.uint8]:
    """Return the ``(N, 3)`` uint8 RGB colours of a PointCloud2's packed ``rgb`` field.

    Raises:
        ValueError: if there is no ``rgb`` field, it is not 4 bytes, or the sizes disagree.
    """
    # The packed colour is declared FLOAT32 by PCL and UINT32 by others; only its bits matter.
    packed = _cloud_fields(msg, ("rgb",), reinterpret="u4")["rgb"]
    colors = np.empty((packed.shape[0], 3), dtype=np.uint8)
    colors[:, 0] = (packed >> 16) & 0xFF
    colors[:, 1] = (packed >> 8) & 0xFF
    colors[:, 2] = packed & 0xFF
    return colors


def transform_to_msg(transform: Transform) -> TransformMsg:
    """Return a geometry_msgs/Transform of ``transform``."""
    x, y, z = (float(v) for v in transform.translation)
    qx, qy, qz, qw = (float(v) for v in transform.rotation)
    return TransformMsg(
        translation=Vector3(x=x, y=y, z=z), rotation=Quaternion(x=qx, y=qy, z=qz, w=qw)
    )


def msg_to_transform(msg: TransformMsg) -> Transform:
    """Return the Transform of a geometry_msgs/Transform.

    Raises:
        ValueError: for a zero or non-finite quaternion or translation.
    """
    t, q = msg.translation, msg.rotation
    return Transform(np.array([t.x, t.y, t.z]), np.array([q.x, q.y, q.z, q.w]))


def pose_to_transform(pose: Pose) -> Transform:
    """Return the Transform of a geometry_msgs/Pose (the pose of a frame in its parent).

    Raises:
        ValueError: for a zero or non-finite quaternion or position.
    """
    p, q = pose.position, pose.orientation
    return Transform(np.array([p.x, p.y, p.z]), np.array([q.x, q.y, q.z, q.w]))


def transform_to_pose(transform: Transform) -> Pose:
    """Return a geometry_msgs/Pose of ``transform``."""
    x, y, z = (float(v) for v in transform.translation)
    qx, qy, qz, qw = (float(v) for v in transform.rotation)
    return Pose(position=Point(x=x, y=y, z=z), orientation=Quaternion(x=qx, y=qy, z=qz, w=qw))


def transform_stamped_to_edge(msg: TransformStamped) -> tuple[str, str, int, Transform]:
    """Return ``(parent, child, stamp_ns, transform)`` of a TransformStamped, for ``TfTree``.

    Like tf2's ``setTransform``, a quaternion that is not of unit length (within
    ``UNIT_QUATERNION_TOLERANCE``) is refused rather than normalised: it is a publisher's bug, and
    the rotation it was meant to be is unknown.

    Raises:
        MalformedMessageError: (a ValueError, cause ``transform``) for a non-unit or non-finite
            quaternion or a non-finite translation.
    """
    q = msg.transform.rotation
    norm = float(np.sqrt(q.x * q.x + q.y * q.y + q.z * q.z + q.w * q.w))
    if not abs(norm - 1.0) <= UNIT_QUATERNION_TOLERANCE:
        raise MalformedMessageError(
            "transform", f"rotation ({q.x}, {q.y}, {q.z}, {q.w}) is not a unit quaternion (norm {norm})"
        )
    t = msg.transform.translation
    if not np.isfinite([t.x, t.y, t.z]).all():
        raise MalformedMessageError("transform", f"translation ({t.x}, {t.y}, {t.z}) is not finite")
    return (
        msg.header.frame_id,
        msg.child_frame_id,
        stamp_to_ns(msg.header.stamp),
        msg_to_transform(msg.transform),
    )


def make_transform_stamped(
    transform: Transform, parent: str, child: str, stamp: Time | int
) -> TransformStamped:
    """Return the TransformStamped that gives the pose of ``child`` in ``parent`` at ``stamp``."""
    stamp_msg = stamp if isinstance(stamp, Time) else ns_to_stamp(stamp)
    return TransformStamped(
        header=Header(stamp=stamp_msg, frame_id=parent),
        child_frame_id=child,
        transform=transform_to_msg(transform),
    )


def intrinsics_from_camera_info(info: CameraInfo) -> PinholeIntrinsics:
    """Return the pinhole intrinsics of a CameraInfo's K matrix.

    Distortion coefficients are ignored: use rectified images or a camera without distortion.

    Raises:
        MalformedMessageError: (a ValueError, cause ``camera_info``) if K is uncalibrated (all
            zeros), non-finite or malformed, the size is zero, or binning or a region of interest
            is set, which would change the pixel grid the intrinsics describe.
    """
    if info.binning_x > 1 or info.binning_y > 1:
        raise MalformedMessageError(
            "camera_info", f"binning {info.binning_x}x{info.binning_y} is not supported; expected none"
        )
    roi = info.roi
    if (roi.width or roi.height) and (
        roi.x_offset, roi.y_offset, roi.width, roi.height
    ) != (0, 0, info.width, info.height):
        raise MalformedMessageError("camera_info", f"a region of interest is not supported; got {roi}")
    try:
        return PinholeIntrinsics.from_k(info.width, info.height, info.k)
    except ValueError as error:
        raise MalformedMessageError("camera_info", f"camera_info: {error}") from None


def camera_info_from_intrinsics(intrinsics: PinholeIntrinsics, header: Header) -> CameraInfo:
    """Return the CameraInfo of an ideal camera: plumb_bob with zero distortion, R = I, P from K."""
    return CameraInfo(
        header=_make_header(header, "", None),
        height=intrinsics.height,
        width=intrinsics.width,
        distortion_model="plumb_bob",
        d=[0.0] * 5,
        k=intrinsics.k,
        r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0],
        p=intrinsics.p,
    )
