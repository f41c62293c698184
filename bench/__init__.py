"""Benchmarks that print figures (median, p95/p99, ratios against a same-run baseline)."""
