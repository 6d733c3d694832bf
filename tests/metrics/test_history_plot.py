"""The training-curve panel (issue 20 item 10e): ``best`` is a flag, not a curve, and the epoch
whose checkpoint training kept is marked on every panel."""

from __future__ import annotations

import pandas as pd

from chestxai.metrics.plots import history_groups

HISTORY = pd.DataFrame(
    {
        "epoch": [1, 2, 3, 4],
        "train_loss": [0.9, 0.7, 0.6, 0.5],
        "val_loss": [0.8, 0.6, 0.65, 0.7],
        "val_auc": [0.70, 0.80, 0.78, 0.79],
        "lr": [1e-3, 1e-3, 5e-4, 5e-4],
        "best": [1, 1, 0, 0],
        "selected_on": ["val_auc"] * 4,
    }
)


def test_best_is_not_plotted_as_a_curve():
    groups = history_groups(HISTORY)
    plotted = [c for cols in groups.values() for c in cols]
    assert "best" not in plotted and "best" not in groups
    assert set(plotted) == {"train_loss", "val_loss", "val_auc", "lr"}
    assert groups["loss"] == ["train_loss", "val_loss"]
    flags = HISTORY.assign(best=HISTORY["best"].astype(bool), improved=[True, True, False, False])
    assert "improved" not in history_groups(flags)  # no boolean column is a curve


def test_the_selected_epoch_is_marked_on_every_panel(tmp_path):
    from chestxai.metrics.plots import history_figure, plot_history, selected_epoch

    assert selected_epoch(HISTORY) == (2.0, "val_auc")  # the last improvement, not the last epoch
    fig = history_figure(HISTORY)
    panels = [ax for ax in fig.axes if ax.get_visible()]
    assert len(panels) == 3  # loss, auc, lr
    for ax in panels:
        marks = [line for line in ax.get_lines() if line.get_gid() == "selected-epoch"]
        assert len(marks) == 1 and list(marks[0].get_xdata()) == [2.0, 2.0]
        assert "selected: epoch 2 (best val_auc)" in [t.get_text() for t in ax.get_legend().get_texts()]
        assert "best" not in [line.get_label() for line in ax.get_lines()]
    assert plot_history(HISTORY, tmp_path / "curves.png").stat().st_size > 0
    assert selected_epoch(HISTORY.drop(columns="best")) is None
