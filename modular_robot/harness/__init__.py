"""How stacks are run: as processes (`up`), in lockstep with the simulator, and over scenario suites."""
