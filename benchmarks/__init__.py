"""Benchmarks: ``python -m benchmarks [--quick] [--json]``. Never run by the test suite.

Each module measures one figure against a naive baseline measured in the same run on the same machine, because
absolute times drift on shared machines while ratios hold. See docs/performance.md.
"""
