"""Every long explain stage shows progress (issue 20 item 3).

``explain`` showed a bar for the heatmaps (67 s) and then nothing for ~25 minutes: faithfulness
(deletion/insertion, ROAD) and the random control ran without one. Each now has a bar, shown when
progress is on and hidden with ``--no-progress``.
"""

from __future__ import annotations

import pytest
from tqdm.auto import tqdm as real_tqdm

from chestxai.explain import measure
from chestxai.explain.run import explain_run
from chestxai.explain.settings import ExplainSettings
from chestxai.testing import write_tiny_run


@pytest.fixture
def bars(monkeypatch) -> list[tuple[str, bool]]:
    shown: list[tuple[str, bool]] = []

    def spy(*a, **k):
        shown.append((str(k.get("desc", "")), not k.get("disable", False)))
        return real_tqdm(*a, **k)

    monkeypatch.setattr(measure, "tqdm", spy, raising=False)
    return shown


@pytest.mark.parametrize("progress", [True, False])
def test_faithfulness_of_the_method_and_of_the_random_control_have_bars(bars, tmp_path, progress) -> None:
    run, _ = write_tiny_run(tmp_path / "run")
    settings = ExplainSettings(faithfulness_limit=4, overlays=False)
    explain_run(run, method="gradcam", split="test", limit=4, settings=settings, progress=progress)
    faith = [(desc, on) for desc, on in bars if "faithfulness" in desc]
    assert {desc.split(":")[0] for desc, _ in faith} == {"gradcam", "random"}
    assert all(on == progress for _, on in faith)  # --no-progress hides them
