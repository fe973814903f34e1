"""Perception: detectors that turn one RGB-D frame into 3D object detections."""
