"""Writeback: pushing results out to vendor systems exactly once (plain Python, no Dagster)."""
