"""Optuna searches around a row of a table (``assembled search``), run as ablation trials."""
