"""Benchmarks: each module is a script that prints its figures and writes them to results/."""
