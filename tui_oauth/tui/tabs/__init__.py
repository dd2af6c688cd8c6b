"""The three tabs of the OAuth Administration page."""
