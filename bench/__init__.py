"""Load benchmarks: real processes on loopback, driven by `wrk`."""
