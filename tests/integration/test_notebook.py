"""The quickstart notebook runs top to bottom against the test suite's service."""

from __future__ import annotations

from pathlib import Path

import nbformat
from nbclient import NotebookClient

NOTEBOOK = Path(__file__).parents[2] / "notebooks" / "quickstart.ipynb"


def test_quickstart_notebook_executes(service, tmp_path, monkeypatch):
    import ray

    monkeypatch.setenv("RAYSEARCH_URL", service.url)
    # the kernel's Ray Data cell joins this service's cluster, not whichever `auto` finds first
    monkeypatch.setenv("RAY_ADDRESS", ray.get_runtime_context().gcs_address)
    plot = NOTEBOOK.parent / "quickstart.png"  # git-ignored: a stale one from an earlier run must not pass
    plot.unlink(missing_ok=True)
    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "completed 1400 documents" in outputs
    assert "mean nDCG@10" in outputs
    assert "matches; the 5 largest:" in outputs and "sections:" in outputs  # the structured search cell
    assert "rd-1" in outputs and "skipped" not in outputs  # the Ray Data cell really indexed and found its rows
    assert plot.exists() and plot.stat().st_size > 0
