"""Declarative ablation tables: YAML schema, profiles, and the Ray runner."""
