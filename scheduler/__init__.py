"""Periodic jobs: one leader among any number of scheduler processes enqueues the sweeps."""
