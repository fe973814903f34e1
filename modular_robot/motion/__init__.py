"""Arm motion: kinematics from the URDF, top-down grasp planning and trajectory timing."""
