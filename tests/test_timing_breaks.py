"""Trapezoidal timing: no periodic sample lands a hair from a phase change, so the safety shield accepts the timing."""

import numpy as np

from modular_robot.core.robot_model import PANDA_HOME
from modular_robot.core.safety import SafetyShield
from modular_robot.core.safety_limits import load_safety_limits
from modular_robot.motion.timing import MIN_GAP_FRACTION, SAMPLE_PERIOD, _trapezoid_samples, time_parameterize

JOINTS = [f"panda_joint{i}" for i in range(1, 8)]


def test_a_phase_change_a_hair_before_a_periodic_sample_drops_the_sample():
    # Accelerating for 0.29999 s: the end of the ramp falls 10 microseconds before the sample at 0.3 s.
    samples = _trapezoid_samples(0.29999, 1.0, SAMPLE_PERIOD)
    times = np.array([t for t, _, _ in samples])
    assert np.min(np.diff(np.concatenate(([0.0], times)))) >= SAMPLE_PERIOD * MIN_GAP_FRACTION
    assert any(abs(t - 0.29999) < 1e-12 for t in times)
    assert samples[-1][1:] == (1.0, 0.0)


def test_home_moves_stamped_in_nanoseconds_pass_the_shield():
    shield = SafetyShield(load_safety_limits("config/safety/mobile_manipulator.yaml"))
    limits = shield.limits.arm
    vmax = np.array([2.175] * 4 + [2.61] * 3) * 0.5
    rng = np.random.default_rng(0)
    for _ in range(300):
        start = np.clip(np.array(PANDA_HOME) + rng.normal(0.0, 0.6, 7), limits.lower + 0.05, limits.upper - 0.05)
        path = time_parameterize([start, PANDA_HOME], vmax, [2.5] * 7)
        stamps = np.array([int(round((0.05 + t) * 1e9)) * 1e-9 for t in path.times])
        verdict = shield.check_trajectory(JOINTS, stamps, path.positions, path.velocities, start=start)
        assert verdict.ok, verdict.reason
