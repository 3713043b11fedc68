"""Benchmarks of glm-mcp against its floors, measured side by side in one run: `python -m bench`.

Not part of the test suite (tests/test_bench.py only checks that one section still runs, `--quick`). Every
figure is a ratio to a floor measured in the same run, because on a shared 2-core machine only
ratios are comparable from one run to the next.
"""
