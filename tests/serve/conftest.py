"""Serve fixtures: small runs (one with dropout for MC dropout), built once per module."""

from __future__ import annotations

import pytest
from serve_helpers import make_run


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("serve-run"))


@pytest.fixture(scope="module")
def dropout_run(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("serve-dropout"), dropout=0.3, seed=1, name="mc")
