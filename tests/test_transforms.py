"""Tests of the quaternion helpers and the Transform type."""

import math

import numpy as np
import pytest

from modular_robot.core.transforms import (
    Transform,
    interpolate,
    quat_conjugate,
    quat_from_matrix,
    quat_from_rpy,
    quat_from_yaw,
    quat_inverse,
    quat_multiply,
    quat_normalize,
    quat_rotate,
    quat_slerp,
    quat_to_matrix,
    quat_to_rpy,
)


def _rot_x(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _rot_y(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rot_z(a: float) -> np.ndarray:
    c, s = math.cos(a), math.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _random_quats(n: int, seed: int = 0) -> np.ndarray:
    return quat_normalize(np.random.default_rng(seed).normal(size=(n, 4)))


def _same_rotation(q1: np.ndarray, q2: np.ndarray, atol: float = 1e-9) -> bool:
    return np.allclose(q1, q2, atol=atol) or np.allclose(q1, -q2, atol=atol)


def test_quat_from_yaw_rotates_x_axis_to_y_axis():
    q = quat_from_yaw(math.pi / 2)
    np.testing.assert_allclose(quat_rotate(q, [1.0, 0.0, 0.0]), [0.0, 1.0, 0.0], atol=1e-12)
    np.testing.assert_allclose(q, quat_from_rpy(0.0, 0.0, math.pi / 2), atol=1e-12)


def test_quat_from_rpy_matches_fixed_axis_matrix_product():
    roll, pitch, yaw = 0.3, -0.7, 2.1
    expected = _rot_z(yaw) @ _rot_y(pitch) @ _rot_x(roll)
    actual = quat_to_matrix(quat_from_rpy(roll, pitch, yaw))
    np.testing.assert_allclose(actual, expected, atol=1e-12)


def test_quat_to_rpy_inverts_quat_from_rpy():
    for rpy in [(0.3, -0.7, 2.1), (-3.0, 1.2, -0.1), (0.0, 0.0, 0.0)]:
        np.testing.assert_allclose(quat_to_rpy(quat_from_rpy(*rpy)), rpy, atol=1e-12)


def test_quat_multiply_composes_like_matrices():
    q1, q2 = _random_quats(2, seed=1)
    np.testing.assert_allclose(
        quat_to_matrix(quat_multiply(q1, q2)), quat_to_matrix(q1) @ quat_to_matrix(q2), atol=1e-12
    )


def test_quat_multiply_broadcasts_over_batches():
    qs = _random_quats(5, seed=2)
    q = _random_quats(1, seed=3)[0]
    batched = quat_multiply(qs, q)
    for i in range(5):
        np.testing.assert_allclose(batched[i], quat_multiply(qs[i], q), atol=1e-15)


def test_quat_rotate_matches_matrix_for_many_vectors():
    q = _random_quats(1, seed=4)[0]
    vectors = np.random.default_rng(5).normal(size=(100, 3))
    np.testing.assert_allclose(quat_rotate(q, vectors), vectors @ quat_to_matrix(q).T, atol=1e-12)


def test_quat_inverse_and_conjugate_undo_rotation():
    q = _random_quats(1, seed=6)[0]
    np.testing.assert_allclose(quat_multiply(q, quat_conjugate(q)), [0, 0, 0, 1], atol=1e-12)
    scaled = 3.0 * q
    np.testing.assert_allclose(
        quat_multiply(scaled, quat_inverse(scaled)), [0, 0, 0, 1], atol=1e-12
    )


def test_zero_quaternion_is_rejected():
    with pytest.raises(ValueError, match="non-zero"):
        quat_normalize([0.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="invert"):
        quat_inverse([0.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError):
        Transform([0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0])


def test_quat_from_matrix_round_trips_including_half_turns():
    rotations = [quat_to_matrix(q) for q in _random_quats(20, seed=7)]
    # Half turns make the trace -1, where the naive trace formula divides by zero.
    rotations += [np.diag(d) for d in ([1.0, -1.0, -1.0], [-1.0, 1.0, -1.0], [-1.0, -1.0, 1.0])]
    for matrix in rotations:
        q = quat_from_matrix(matrix)
        assert q[3] >= 0.0
        assert math.isclose(np.linalg.norm(q), 1.0)
        np.testing.assert_allclose(quat_to_matrix(q), matrix, atol=1e-12)


def test_slerp_midpoint_of_yaws_is_half_yaw():
    q = quat_slerp(quat_from_yaw(0.0), quat_from_yaw(1.0), 0.5)
    np.testing.assert_allclose(q, quat_from_yaw(0.5), atol=1e-12)
    np.testing.assert_allclose(quat_slerp(quat_from_yaw(0.2), quat_from_yaw(1.4), 0.25),
                               quat_from_yaw(0.5), atol=1e-12)


def test_slerp_takes_the_short_way_when_signs_differ():
    q0 = quat_from_yaw(0.1)
    q1 = -quat_from_yaw(0.3)  # same rotation as yaw 0.3, opposite hemisphere
    assert _same_rotation(quat_slerp(q0, q1, 0.5), quat_from_yaw(0.2))


def test_slerp_endpoints_and_near_identical_inputs():
    q0, q1 = _random_quats(2, seed=8)
    assert _same_rotation(quat_slerp(q0, q1, 0.0), q0)
    assert _same_rotation(quat_slerp(q0, q1, 1.0), q1)
    np.testing.assert_allclose(quat_slerp(q0, q0, 0.3), q0, atol=1e-12)


def test_transform_compose_matches_matrix_product():
    a = Transform.from_xyz_rpy(1.0, -2.0, 0.5, 0.1, 0.2, 0.3)
    b = Transform.from_xyz_rpy(-0.3, 0.4, 2.0, -1.0, 0.5, 2.5)
    np.testing.assert_allclose((a * b).as_matrix(), a.as_matrix() @ b.as_matrix(), atol=1e-12)
    assert a.compose(b).allclose(a * b)


def test_transform_apply_vectorised_matches_matrix_and_composition():
    a = Transform.from_xyz_rpy(1.0, 2.0, 3.0, 0.4, -0.2, 1.0)
    b = Transform.from_xyz_rpy(0.0, -1.0, 0.5, 0.0, 0.3, -2.0)
    points = np.random.default_rng(9).normal(size=(1000, 3))
    homogeneous = np.hstack([points, np.ones((1000, 1))])
    np.testing.assert_allclose(a.apply(points), (homogeneous @ a.as_matrix().T)[:, :3], atol=1e-12)
    np.testing.assert_allclose((a * b).apply(points), a.apply(b.apply(points)), atol=1e-12)
    np.testing.assert_allclose(a.apply(points[0]), a.apply(points)[0], atol=1e-12)


def test_transform_apply_keeps_float32_clouds_float32():
    points = np.ones((10, 3), dtype=np.float32)
    out = Transform.from_xyz_rpy(1.0, 0.0, 0.0, yaw=0.5).apply(points)
    assert out.dtype == np.float32
    with pytest.raises(ValueError, match=r"\(N, 3\)"):
        Transform().apply(np.ones((10, 2)))


def test_transform_inverse_undoes_transform():
    a = Transform.from_xyz_rpy(1.0, 2.0, 3.0, 0.4, -0.2, 1.0)
    assert (a * a.inverse()).allclose(Transform.identity())
    assert (a.inverse() * a).allclose(Transform.identity())
    np.testing.assert_allclose(a.inverse().as_matrix(), np.linalg.inv(a.as_matrix()), atol=1e-12)


def test_transform_matrix_round_trip_and_validation():
    a = Transform.from_xyz_rpy(0.5, -0.5, 1.5, 3.0, 0.1, -2.0)
    assert Transform.from_matrix(a.as_matrix()).allclose(a)
    bad = a.as_matrix()
    bad[3] = [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="last row"):
        Transform.from_matrix(bad)
    with pytest.raises(ValueError, match=r"\(4, 4\)"):
        Transform.from_matrix(np.eye(3))


def test_transform_normalises_copies_and_freezes_its_arrays():
    translation = np.array([1.0, 2.0, 3.0])
    t = Transform(translation, [0.0, 0.0, 0.0, 2.0])
    translation[0] = 100.0
    assert t.translation[0] == 1.0
    np.testing.assert_allclose(t.rotation, [0.0, 0.0, 0.0, 1.0])
    with pytest.raises(ValueError):
        t.translation[0] = 5.0
    with pytest.raises(ValueError, match="translation"):
        Transform([1.0, 2.0], [0.0, 0.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="finite"):
        Transform([np.nan, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0])


def test_interpolate_midpoint_lerps_translation_and_slerps_rotation():
    a = Transform.from_xyz_rpy(0.0, 0.0, 0.0, yaw=0.0)
    b = Transform.from_xyz_rpy(2.0, -4.0, 1.0, yaw=math.pi / 2)
    mid = interpolate(a, b, 0.5)
    np.testing.assert_allclose(mid.translation, [1.0, -2.0, 0.5], atol=1e-12)
    assert _same_rotation(mid.rotation, quat_from_yaw(math.pi / 4))
    assert interpolate(a, b, 0.0).allclose(a)
    assert interpolate(a, b, 1.0).allclose(b)
