"""Scheduling: one event loop per process runs the cases, across xdist workers; signals and daemon threads."""
