"""examples/power_law_ptb.py re-renders its table and figure from a run's rows (docs/power-law-ptb.json)."""

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_table_and_figure_from_the_recorded_run(tmp_path):
    rows = json.loads((ROOT / "docs" / "power-law-ptb.json").read_text())
    png = tmp_path / "fig.png"
    out = subprocess.run([sys.executable, str(ROOT / "examples" / "power_law_ptb.py"), "--from-json",
                          str(ROOT / "docs" / "power-law-ptb.json"), "--figure", str(png)],
                         capture_output=True, text=True, check=True, cwd=ROOT,
                         env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin"}).stdout
    lines = [line for line in out.splitlines() if line.startswith("| ")]
    assert len(lines) == 1 + len(rows)  # header + one row per run
    assert "| full | 0 | 10000x200 | 2,000,000 | 100.0% |" in out
    assert "power-law 12.5% budget" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
