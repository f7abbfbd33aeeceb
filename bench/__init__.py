"""Benchmarks: speed as a ratio against a bare baseline measured in the same run (never asserted in tests)."""
