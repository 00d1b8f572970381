"""Shared fixtures of the runner tests: small suite configs on tasks and recipes that exist today."""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

#: 2 solvers (a named and an inline recipe) x 2 tasks x 2 seeds.
SMALL_SUITE: dict[str, Any] = {
    "name": "small",
    "budget": 6,
    "batch_size": 2,
    "seeds": [0, 1],
    "solvers": ["rs", {"solver": "rs", "method": "sobol", "name": "rs_sobol"}],
    "tasks": ["ackley_cat", {"name": "pest_control", "kwargs": {"n_stages": 10}}],
}


@pytest.fixture
def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]


@pytest.fixture
def suite_dict() -> dict[str, Any]:
    """A fresh copy of :data:`SMALL_SUITE` to modify."""
    return copy.deepcopy(SMALL_SUITE)


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[[dict[str, Any], str], Path]:
    """Write a config dict as YAML under ``tmp_path``; returns its path."""

    def write(config: dict[str, Any], name: str = "suite.yaml") -> Path:
        path = tmp_path / name
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    return write
