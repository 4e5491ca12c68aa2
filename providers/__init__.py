"""Outbound clients used by actors: each knows its remote protocol and its config, nothing of Sector's models."""
