"""The quickstart notebook runs top to bottom against the test suite's service."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes(service, tmp_path, monkeypatch):
    monkeypatch.setenv("RAYSEARCH_URL", service.url)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "completed 1400 documents" in outputs
    assert "mean nDCG@10" in outputs
    assert (NOTEBOOK.parent / "quickstart.png").exists()
