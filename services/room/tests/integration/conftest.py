"""Room integration tests: the process harness lives in room_cluster.py, importable from every module."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
