"""Reproducible measurements: ``python -m benchmarks [name ...]`` (``make bench``)."""
