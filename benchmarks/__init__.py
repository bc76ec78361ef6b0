"""Turnout's benchmarks: `make bench` (full) and `make bench-quick` (CI keeps the harness working)."""
