"""A run's peak memory is its own: a reset forgets what an earlier run in the same process used."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch

from chestxai.train import memory


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the resettable peak is Linux's VmHWM")
def test_a_reset_forgets_an_earlier_larger_peak():
    cpu = torch.device("cpu")
    if not memory.reset_peak_memory(cpu):
        pytest.skip("/proc/self/clear_refs is not writable here: only the lifetime peak is readable")
    base = memory.peak_memory_mb(cpu)
    big = np.ones(400 * 2**20, np.uint8)  # 400 MiB, touched
    after_big = memory.peak_memory_mb(cpu)
    del big
    assert after_big >= base + 350
    assert memory.reset_peak_memory(cpu)
    assert memory.peak_memory_mb(cpu) < after_big - 300  # the next run does not inherit the 400 MiB


def test_without_a_readable_high_water_mark_the_lifetime_peak_is_reported(monkeypatch, tmp_path):
    monkeypatch.setattr(memory, "_STATUS", tmp_path / "missing")
    monkeypatch.setattr(memory, "_CLEAR_REFS", tmp_path / "no" / "clear_refs")
    cpu = torch.device("cpu")
    assert memory.reset_peak_memory(cpu) is False
    assert memory.peak_memory_mb(cpu) > 0
