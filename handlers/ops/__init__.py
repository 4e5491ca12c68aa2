"""Operations: metrics and logs (metrics.py), the dashboard and its JSON API."""
