"""Real-time mode on a machine too slow for it: sim time slows down instead of piling up a lag."""

import time

from modular_robot.sim.bridge_node import CATCH_UP_S, MAX_LAG_S
from ros_helpers import SimHarness
from test_sim_hil import TABLETOP


def test_a_stalled_machine_slows_sim_time_instead_of_falling_behind_and_bursting():
    harness = SimHarness(TABLETOP, mode="realtime")
    try:
        sim = harness.sim
        sim._wall_start = time.monotonic()
        sim._sim_start = sim.world.sim_time
        # The machine stalls for 5 s (a CPU hog, a swap storm): the wall clock runs on, the sim does not.
        sim._wall_start -= 5.0
        before = sim.world.sim_time
        sim._on_timer()
        # One tick advances at most its catch-up, and the lag left is bounded: no 5 s debt to pay
        # back at 10x speed over the next half second.
        assert sim.world.sim_time - before <= CATCH_UP_S + 1e-9
        lag = sim._sim_start + (time.monotonic() - sim._wall_start) * sim.real_time_factor - sim.world.sim_time
        assert lag <= MAX_LAG_S + 0.05, f"{lag:.2f} s behind after the stall"
        for _ in range(5):
            sim._on_timer()
        lag = sim._sim_start + (time.monotonic() - sim._wall_start) * sim.real_time_factor - sim.world.sim_time
        assert lag <= MAX_LAG_S, f"{lag:.2f} s behind"
    finally:
        harness.close()
