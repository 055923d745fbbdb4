"""Where things are, for tests in any folder: the repository, the test data, the shared
corpora beside the repository (absent on a fresh clone elsewhere: tests using them skip)."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DATA = ROOT / "tests" / "data"
CORPORA = ROOT.parent / "shared" / "corpora"
