"""Sweep results: tables of runs, and cross-validated recipes compared fold by fold."""
