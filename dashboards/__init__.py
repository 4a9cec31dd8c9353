"""Comparison dashboards: one self-contained plotly page per ablation table, plus an index.

Everything here reads the MLflow store (a SQLite file, read as MLflow's client would by
``assembled.tracking.sqlite_reader``, or a tracking server through MLflow's client), never the
trainer, so pages can be drawn for runs made on any cluster.
"""
