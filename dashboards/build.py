"""Write table pages and the index to a folder, and each page as an artifact of its table's
latest parent run (``dashboard/<experiment>.html``), so the MLflow UI shows it too."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .page import index_page, status_counts, table_page
from .source import DashboardError, TableData, experiment_name, list_tables, load_table

if TYPE_CHECKING:  # annotations only: MLflow loads where a client is made
    from mlflow.tracking import MlflowClient


@dataclass
class Written:
    pages: dict[str, Path]
    index: Path


def build(client: MlflowClient, tables: list[str] | None, out: Path, log_artifact: bool = True) -> Written:
    out.mkdir(parents=True, exist_ok=True)
    names = [experiment_name(t) for t in tables] if tables else list_tables(client)
    pages: dict[str, Path] = {}
    drawn: dict[str, TableData] = {}
    for name in names:
        data = drawn[name] = load_table(client, name)
        path = out / f"{name}.html"
        path.write_text(table_page(data), encoding="utf-8")
        pages[name] = path
        if log_artifact:
            client.log_artifact(data.parent.info.run_id, str(path), "dashboard")
    entries = []
    for name in list_tables(client):
        try:  # the same rows and statuses as the table's page (a resumed table's rows sit under older parents)
            data = drawn.get(name) or load_table(client, name, curves=False)
        except DashboardError:  # tables made before manifests existed: not listed
            continue
        entries.append(
            {
                "experiment": name,
                "file": f"{name}.html" if (out / f"{name}.html").exists() else None,
                "title": data.manifest.get("title", ""),
                "profile": data.profile,
                "started": dt.datetime.fromtimestamp(data.parent.info.start_time / 1000).strftime("%Y-%m-%d %H:%M"),
                "counts": status_counts(data.rows),
            }
        )
    index = out / "index.html"
    index.write_text(index_page(entries), encoding="utf-8")
    return Written(pages, index)
