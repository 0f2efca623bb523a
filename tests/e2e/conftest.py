"""System tests: the truth_cluster harness lives beside them, importable from every module."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
