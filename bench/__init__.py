"""Postroom's benchmarks: ``make bench`` (full) and a tiny smoke run inside ``make test``."""
