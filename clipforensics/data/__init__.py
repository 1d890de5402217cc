"""Datasets: manifests from the standard layouts, and the preprocessing that produces them."""
