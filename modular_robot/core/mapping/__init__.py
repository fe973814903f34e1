"""Mapping: fusion of detections into a persistent semantic map, text queries, occupancy grids."""
