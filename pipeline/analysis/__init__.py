"""Measurements of a recording: each module computes one kind of metric."""
