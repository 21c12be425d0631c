"""The examples in the dashboards' docstrings run (pytest collects doctests only under
``reintegration/``)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = (
    "dashboards.auth",
    "dashboards.filters",
    "dashboards.figures.common",
    "dashboards.figures.trajectories",
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name):
    result = doctest.testmod(importlib.import_module(name), optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0
