"""Comparison dashboards: one self-contained plotly page per ablation table, plus an index.

Everything here reads MLflow through its client (a SQLite file or a tracking server), never
the trainer, so pages can be drawn for runs made on any cluster.
"""
