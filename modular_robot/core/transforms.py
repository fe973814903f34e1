"""Quaternions and rigid transforms in numpy.

Quaternions are arrays ``(x, y, z, w)``, the order of geometry_msgs/Quaternion and tf2.
Rotations follow ROS conventions: right-handed, active (a rotation turns vectors, not axes), and
roll-pitch-yaw means fixed-axis rotations about x, then y, then z
(``R = Rz(yaw) Ry(pitch) Rx(roll)``).

A ``Transform`` named ``T_a_b`` maps points expressed in frame ``b`` into frame ``a``; it is also
the pose of frame ``b`` in frame ``a``. Composition chains these: ``T_a_c = T_a_b * T_b_c``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike, NDArray

# Below this |dot| gap from 1 slerp's sin(theta) loses precision; the linear blend is then exact to
# float64 rounding, so we switch to it.
_SLERP_LINEAR_THRESHOLD = 1e-9
_MIN_QUAT_NORM = 1e-12


def quat_normalize(q: ArrayLike) -> NDArray[np.float64]:
    """Return the unit quaternion of ``q`` (shape ``(..., 4)``).

    Raises:
        ValueError: if ``q`` has the wrong shape, a zero norm or non-finite values.
    """
    q = np.asarray(q, dtype=np.float64)
    if q.shape[-1:] != (4,):
        raise ValueError(f"quaternion must have shape (..., 4), got {q.shape}")
    norm = np.linalg.norm(q, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norm)) or np.any(norm < _MIN_QUAT_NORM):
        raise ValueError(f"quaternion must be finite and non-zero, got {q.tolist()}")
    return q / norm


def quat_multiply(q1: ArrayLike, q2: ArrayLike) -> NDArray[np.float64]:
    """Return the Hamilton product ``q1 * q2``: rotate by ``q2`` first, then by ``q1``.

    Both arguments broadcast over leading dimensions (shape ``(..., 4)``).
    """
    q1 = np.asarray(q1, dtype=np.float64)
    q2 = np.asarray(q2, dtype=np.float64)
    x1, y1, z1, w1 = q1[..., 0], q1[..., 1], q1[..., 2], q1[..., 3]
    x2, y2, z2, w2 = q2[..., 0], q2[..., 1], q2[..., 2], q2[..., 3]
    return np.stack(
        [
            w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
            w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
            w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
            w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2,
        ],
        axis=-1,
    )


def quat_conjugate(q: ArrayLike) -> NDArray[np.float64]:
    """Return the conjugate ``(-x, -y, -z, w)`` of ``q`` (shape ``(..., 4)``)."""
    q = np.asarray(q, dtype=np.float64)
    return q * np.array([-1.0, -1.0, -1.0, 1.0])


def quat_inverse(q: ArrayLike) -> NDArray[np.float64]:
    """Return the inverse of ``q``, which need not be unit length.

    Raises:
        ValueError: if ``q`` is zero or non-finite.
    """
    q = np.asarray(q, dtype=np.float64)
    norm_sq = np.sum(q * q, axis=-1, keepdims=True)
    if not np.all(np.isfinite(norm_sq)) or np.any(norm_sq < _MIN_QUAT_NORM**2):
        raise ValueError(f"cannot invert a zero or non-finite quaternion: {q.tolist()}")
    return quat_conjugate(q) / norm_sq


def quat_rotate(q: ArrayLike, vectors: ArrayLike) -> NDArray[np.float64]:
    """Rotate vectors (shape ``(..., 3)``) by the unit quaternion ``q``.

    Uses ``v' = v + w t + u x t`` with ``t = 2 u x v``, which needs no matrix and broadcasts over
    many vectors.
    """
    q = np.asarray(q, dtype=np.float64)
    v = np.asarray(vectors, dtype=np.float64)
    u = q[..., :3]
    w = q[..., 3:4]
    t = 2.0 * np.cross(u, v)
    return v + w * t + np.cross(u, t)


def quat_to_matrix(q: ArrayLike) -> NDArray[np.float64]:
    """Return the rotation matrix (shape ``(..., 3, 3)``) of quaternion ``q`` (normalised first)."""
    q = quat_normalize(q)
    x, y, z, w = q[..., 0], q[..., 1], q[..., 2], q[..., 3]
    xx, yy, zz = x * x, y * y, z * z
    xy, xz, yz = x * y, x * z, y * z
    wx, wy, wz = w * x, w * y, w * z
    m = np.stack(
        [
            1.0 - 2.0 * (yy + zz), 2.0 * (xy - wz), 2.0 * (xz + wy),
            2.0 * (xy + wz), 1.0 - 2.0 * (xx + zz), 2.0 * (yz - wx),
            2.0 * (xz - wy), 2.0 * (yz + wx), 1.0 - 2.0 * (xx + yy),
        ],
        axis=-1,
    )
    return m.reshape(q.shape[:-1] + (3, 3))


def quat_from_matrix(matrix: ArrayLike) -> NDArray[np.float64]:
    """Return the unit quaternion, with ``w >= 0``, of a 3x3 rotation matrix.

    Uses Shepperd's method: it divides by the largest of the four candidate terms, which keeps the
    result accurate near 180-degree rotations where the trace method loses precision.

    Raises:
        ValueError: if ``matrix`` is not 3x3 or not finite.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (3, 3):
        raise ValueError(f"rotation matrix must have shape (3, 3), got {m.shape}")
    if not np.all(np.isfinite(m)):
        raise ValueError("rotation matrix must be finite")
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    diag = (trace, m[0, 0], m[1, 1], m[2, 2])
    largest = int(np.argmax(diag))
    if largest == 0:
        s = 2.0 * np.sqrt(1.0 + trace)
        q = [(m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s, 0.25 * s]
    elif largest == 1:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        q = [0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s, (m[2, 1] - m[1, 2]) / s]
    elif largest == 2:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        q = [(m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s, (m[0, 2] - m[2, 0]) / s]
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        q = [(m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s, (m[1, 0] - m[0, 1]) / s]
    q = quat_normalize(q)
    return -q if q[3] < 0.0 else q


def quat_from_yaw(yaw: float) -> NDArray[np.float64]:
    """Return the quaternion of a rotation by ``yaw`` radians about z."""
    half = 0.5 * yaw
    return np.array([0.0, 0.0, np.sin(half), np.cos(half)])


def quat_from_rpy(roll: float, pitch: float, yaw: float) -> NDArray[np.float64]:
    """Return the quaternion of fixed-axis roll (x), then pitch (y), then yaw (z), in radians."""
    cr, sr = np.cos(0.5 * roll), np.sin(0.5 * roll)
    cp, sp = np.cos(0.5 * pitch), np.sin(0.5 * pitch)
    cy, sy = np.cos(0.5 * yaw), np.sin(0.5 * yaw)
    return np.array(
        [
            sr * cp * cy - cr * sp * sy,
            cr * sp * cy + sr * cp * sy,
            cr * cp * sy - sr * sp * cy,
            cr * cp * cy + sr * sp * sy,
        ]
    )


def quat_to_rpy(q: ArrayLike) -> tuple[float, float, float]:
    """Return ``(roll, pitch, yaw)`` in radians of ``q``, the inverse of ``quat_from_rpy``.

    At pitch = +-90 degrees roll and yaw are not unique; the result then puts the rotation in yaw.
    """
    x, y, z, w = quat_normalize(q)
    roll = np.arctan2(2.0 * (w * x + y * z), 1.0 - 2.0 * (x * x + y * y))
    # Clipping guards arcsin against rounding just past +-1 at gimbal lock.
    pitch = np.arcsin(np.clip(2.0 * (w * y - z * x), -1.0, 1.0))
    yaw = np.arctan2(2.0 * (w * z + x * y), 1.0 - 2.0 * (y * y + z * z))
    return float(roll), float(pitch), float(yaw)


def quat_slerp(q0: ArrayLike, q1: ArrayLike, fraction: float) -> NDArray[np.float64]:
    """Interpolate between unit quaternions along the shorter great arc.

    Args:
        q0: Rotation at ``fraction = 0``.
        q1: Rotation at ``fraction = 1``.
        fraction: Position along the arc; values outside [0, 1] extrapolate.

    Returns:
        The interpolated unit quaternion.
    """
    q0 = quat_normalize(q0)
    q1 = quat_normalize(q1)
    dot = float(np.dot(q0, q1))
    # q and -q are the same rotation; flipping one takes the short way round.
    if dot < 0.0:
        q1 = -q1
        dot = -dot
    if dot > 1.0 - _SLERP_LINEAR_THRESHOLD:
        return quat_normalize(q0 + fraction * (q1 - q0))
    theta = np.arccos(dot)
    sin_theta = np.sin(theta)
    w0 = np.sin((1.0 - fraction) * theta) / sin_theta
    w1 = np.sin(fraction * theta) / sin_theta
    return quat_normalize(w0 * q0 + w1 * q1)


def _rotate(x: float, y: float, z: float, w: float, vx: float, vy: float, vz: float) -> tuple[float, float, float]:
    """Rotate one vector by a unit quaternion in plain floats (``quat_rotate``'s formula)."""
    tx = 2.0 * (y * vz - z * vy)
    ty = 2.0 * (z * vx - x * vz)
    tz = 2.0 * (x * vy - y * vx)
    return (vx + w * tx + (y * tz - z * ty),
            vy + w * ty + (z * tx - x * tz),
            vz + w * tz + (x * ty - y * tx))


def _identity_translation() -> NDArray[np.float64]:
    return np.zeros(3)


def _identity_rotation() -> NDArray[np.float64]:
    return np.array([0.0, 0.0, 0.0, 1.0])


@dataclass(frozen=True, eq=False)
class Transform:
    """A rigid transform: rotate by ``rotation``, then translate by ``translation``.

    The arrays are copied, normalised and made read-only on construction, so a ``Transform`` can be
    stored and shared (as the TF tree does) without defensive copies.

    Attributes:
        translation: Translation in metres, shape ``(3,)``.
        rotation: Unit quaternion ``(x, y, z, w)``, shape ``(4,)``.
    """

    translation: NDArray[np.float64] = field(default_factory=_identity_translation)
    rotation: NDArray[np.float64] = field(default_factory=_identity_rotation)

    def __post_init__(self) -> None:
        translation = np.array(self.translation, dtype=np.float64)
        if translation.shape != (3,):
            raise ValueError(f"translation must have shape (3,), got {translation.shape}")
        if not all(math.isfinite(v) for v in translation.tolist()):
            raise ValueError(f"translation must be finite, got {translation.tolist()}")
        rotation = np.array(self.rotation, dtype=np.float64)
        if rotation.shape != (4,):
            raise ValueError(f"rotation must have shape (4,), got {rotation.shape}")
        # quat_normalize's checks in plain floats: every TF message builds a few of these.
        norm = math.sqrt(sum(v * v for v in rotation.tolist()))
        if not math.isfinite(norm) or norm < _MIN_QUAT_NORM:
            raise ValueError(f"quaternion must be finite and non-zero, got {rotation.tolist()}")
        rotation /= norm
        translation.flags.writeable = False
        rotation.flags.writeable = False
        # The dataclass is frozen; object.__setattr__ is the documented way to set fields here.
        object.__setattr__(self, "translation", translation)
        object.__setattr__(self, "rotation", rotation)

    @classmethod
    def identity(cls) -> Transform:
        """Return the identity transform."""
        return cls()

    @classmethod
    def from_xyz_rpy(
        cls, x: float, y: float, z: float, roll: float = 0.0, pitch: float = 0.0, yaw: float = 0.0
    ) -> Transform:
        """Return the transform with translation ``(x, y, z)`` and fixed-axis roll, pitch, yaw."""
        return cls(np.array([x, y, z]), quat_from_rpy(roll, pitch, yaw))

    @classmethod
    def from_matrix(cls, matrix: ArrayLike) -> Transform:
        """Return the transform of a 4x4 homogeneous matrix.

        Raises:
            ValueError: if ``matrix`` is not 4x4 or its last row is not ``[0, 0, 0, 1]``.
        """
        m = np.asarray(matrix, dtype=np.float64)
        if m.shape != (4, 4):
            raise ValueError(f"homogeneous matrix must have shape (4, 4), got {m.shape}")
        if not np.allclose(m[3], [0.0, 0.0, 0.0, 1.0]):
            raise ValueError(f"last row of a rigid transform must be [0, 0, 0, 1], got {m[3]}")
        return cls(m[:3, 3], quat_from_matrix(m[:3, :3]))

    def as_matrix(self) -> NDArray[np.float64]:
        """Return the 4x4 homogeneous matrix of this transform."""
        m = np.eye(4)
        m[:3, :3] = quat_to_matrix(self.rotation)
        m[:3, 3] = self.translation
        return m

    @classmethod
    def _from_valid(cls, translation: list[float], rotation: list[float]) -> Transform:
        """Build from values computed out of valid transforms: finite, right-sized, near-unit.

        TF lookups compose many single transforms; skipping the argument checks (and numpy's
        per-call overhead on 3- and 4-vectors) makes each composition several times cheaper.
        """
        x, y, z, w = rotation
        scale = 1.0 / math.sqrt(x * x + y * y + z * z + w * w)
        t = np.array(translation, dtype=np.float64)
        q = np.array((x * scale, y * scale, z * scale, w * scale), dtype=np.float64)
        t.flags.writeable = False
        q.flags.writeable = False
        result = object.__new__(cls)
        object.__setattr__(result, "translation", t)
        object.__setattr__(result, "rotation", q)
        return result

    def compose(self, other: Transform) -> Transform:
        """Return ``self * other``: apply ``other`` first, then ``self``."""
        x1, y1, z1, w1 = self.rotation.tolist()
        x2, y2, z2, w2 = other.rotation.tolist()
        px, py, pz = _rotate(x1, y1, z1, w1, *other.translation.tolist())
        tx, ty, tz = self.translation.tolist()
        return Transform._from_valid(
            [tx + px, ty + py, tz + pz],
            [w1 * x2 + x1 * w2 + y1 * z2 - z1 * y2,
             w1 * y2 - x1 * z2 + y1 * w2 + z1 * x2,
             w1 * z2 + x1 * y2 - y1 * x2 + z1 * w2,
             w1 * w2 - x1 * x2 - y1 * y2 - z1 * z2],
        )

    def __mul__(self, other: Transform) -> Transform:
        """Return ``self.compose(other)``."""
        if not isinstance(other, Transform):
            return NotImplemented
        return self.compose(other)

    def inverse(self) -> Transform:
        """Return the transform that undoes this one."""
        x, y, z, w = self.rotation.tolist()
        px, py, pz = _rotate(-x, -y, -z, w, *self.translation.tolist())
        return Transform._from_valid([-px, -py, -pz], [-x, -y, -z, w])

    def apply(self, points: ArrayLike) -> NDArray[np.floating]:
        """Map points (shape ``(3,)`` or ``(N, 3)``) through this transform.

        Float32 input stays float32 (point clouds); other input is computed in float64.

        Raises:
            ValueError: if ``points`` does not have shape ``(3,)`` or ``(N, 3)``.
        """
        pts = np.asarray(points)
        if pts.shape[-1:] != (3,) or pts.ndim > 2:
            raise ValueError(f"points must have shape (3,) or (N, 3), got {pts.shape}")
        dtype = pts.dtype if pts.dtype in (np.float32, np.float64) else np.dtype(np.float64)
        rotation = quat_to_matrix(self.rotation).astype(dtype, copy=False)
        # One matrix product per cloud is far faster than the per-vector quaternion formula.
        return pts.astype(dtype, copy=False) @ rotation.T + self.translation.astype(dtype)

    def allclose(self, other: Transform, atol: float = 1e-9) -> bool:
        """Return whether both transforms agree within ``atol`` (q and -q count as equal)."""
        if not np.allclose(self.translation, other.translation, rtol=0.0, atol=atol):
            return False
        return bool(
            np.allclose(self.rotation, other.rotation, rtol=0.0, atol=atol)
            or np.allclose(self.rotation, -other.rotation, rtol=0.0, atol=atol)
        )

    def __repr__(self) -> str:
        t = ", ".join(f"{v:.6g}" for v in self.translation)
        q = ", ".join(f"{v:.6g}" for v in self.rotation)
        return f"Transform(translation=[{t}], rotation=[{q}])"


def interpolate(a: Transform, b: Transform, fraction: float) -> Transform:
    """Blend two transforms: linear in translation, slerp in rotation.

    Args:
        a: Transform at ``fraction = 0``.
        b: Transform at ``fraction = 1``.
        fraction: Position between them; values outside [0, 1] extrapolate.
    """
    # quat_slerp's arithmetic in plain floats: TF lookups interpolate one edge at a time.
    q0 = a.rotation.tolist()
    q1 = b.rotation.tolist()
    dot = sum(u * v for u, v in zip(q0, q1))
    if dot < 0.0:
        q1 = [-v for v in q1]
        dot = -dot
    if dot > 1.0 - _SLERP_LINEAR_THRESHOLD:
        w0, w1 = 1.0 - fraction, fraction
    else:
        theta = math.acos(min(dot, 1.0))
        sin_theta = math.sin(theta)
        w0 = math.sin((1.0 - fraction) * theta) / sin_theta
        w1 = math.sin(fraction * theta) / sin_theta
    translation = [u + fraction * (v - u) for u, v in zip(a.translation.tolist(), b.translation.tolist())]
    return Transform._from_valid(translation, [w0 * u + w1 * v for u, v in zip(q0, q1)])
