"""The operations dashboard's domain: the Redis keys the workers write and the dashboard reads, how
arguments are redacted, the per-minute series, and the reads and actions on jobs, workers and the
schedule. Nothing here imports actors/ or handlers/: callers pass the Redis client (and, to re-enqueue,
the broker), so workers, the API and the scheduler share one definition of the state.
"""
