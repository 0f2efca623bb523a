"""Deployment tests: the rendering helper lives in deploy_render.py, importable from every module."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import deploy_render


@pytest.fixture(scope="session")
def rendered() -> dict[str, list[dict[str, Any]]]:
    """Both overlays, rendered once per session."""
    return {overlay: deploy_render.render(overlay) for overlay in deploy_render.OVERLAYS}
