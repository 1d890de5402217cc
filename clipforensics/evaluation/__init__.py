"""Scoring models over manifests: predictions, metric tables, perturbations and reports."""
