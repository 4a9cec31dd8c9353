"""Measurement protocol constants that readers without torch need (the runner, reports, pages)."""

MAX_CV = 0.10  # a timing whose rounds vary more than this (std / mean) is flagged unreliable
