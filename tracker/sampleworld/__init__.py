"""A deterministic, kernel-shaped sample world for the demo and the tests."""
