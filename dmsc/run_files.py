"""Reading a run's data files (an experiment's results folder): CSV and JSON
lines, or their gzipped copies (the committed reports gzip large ones). Used
by the report (dmsc/experiment/report.py) and the fidelity verdict
(dmsc/fidelity.py)."""
from __future__ import annotations

import csv
import json
from pathlib import Path


def open_data(path: Path):
    """A data file, or its gzipped copy."""
    path = Path(path)
    if not path.exists() and path.with_name(path.name + ".gz").exists():
        import gzip
        return gzip.open(path.with_name(path.name + ".gz"), "rt", newline="")
    return open(path, newline="")


def read_jsonl(path: Path) -> list[dict]:
    """Every readable line of a JSON-lines file ([] if there is no file)."""
    out = []
    try:
        with open_data(path) as f:
            for line in f:
                try:
                    out.append(json.loads(line))
                except ValueError:
                    continue
    except FileNotFoundError:
        pass
    return out


def read_csv(path: Path) -> list[dict]:
    """The rows of a CSV file as dicts ([] if there is no file)."""
    try:
        with open_data(path) as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []
