"""core: pure decisions over model values.

Validation, plan/diff, DAG building, expressions, retry and breaker decisions, RBAC,
rate-limit arithmetic, key hashing. No files, network, clock reads or sleeps: time is
an argument. Must not import adapters, runtime or entry points.
"""
