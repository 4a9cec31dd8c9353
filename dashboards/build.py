"""Write table pages and the index to a folder, and each page as an artifact of its table's
latest parent run (``dashboard/<experiment>.html``), so the MLflow UI shows it too."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from mlflow.tracking import MlflowClient

from .page import index_page, table_page
from .source import experiment_name, latest_parent, list_tables, load_table


@dataclass
class Written:
    pages: dict[str, Path]
    index: Path


def build(client: MlflowClient, tables: list[str] | None, out: Path, log_artifact: bool = True) -> Written:
    out.mkdir(parents=True, exist_ok=True)
    names = [experiment_name(t) for t in tables] if tables else list_tables(client)
    pages: dict[str, Path] = {}
    for name in names:
        data = load_table(client, name)
        path = out / f"{name}.html"
        path.write_text(table_page(data), encoding="utf-8")
        pages[name] = path
        if log_artifact:
            client.log_artifact(data.parent.info.run_id, str(path), "dashboard")
    entries = []
    for name in list_tables(client):
        try:
            parent, manifest = latest_parent(client, name)
        except Exception:  # tables made before manifests existed: listed, not linked
            continue
        children = client.search_runs(
            [parent.info.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'", max_results=5000
        )
        counts: dict[str, int] = {}
        for r in children:
            counts[r.info.status] = counts.get(r.info.status, 0) + 1
        entries.append(
            {
                "experiment": name,
                "file": f"{name}.html" if (out / f"{name}.html").exists() else "#",
                "title": manifest.get("title", ""),
                "profile": manifest.get("profile", ""),
                "started": dt.datetime.fromtimestamp(parent.info.start_time / 1000).strftime("%Y-%m-%d %H:%M"),
                "counts": counts,
            }
        )
    index = out / "index.html"
    index.write_text(index_page(entries), encoding="utf-8")
    return Written(pages, index)
