"""PyBullet simulation: a robot driver that speaks the hardware interfaces, and nothing else."""
