"""The model a training recipe asks for, with the preprocessing it must be fed.

Kept out of the training loop because the choice has branches the loop should not spell out:
torchxrayvision weights bring their own pixel range and resolution, and a published head brings
torchxrayvision's classifier and its operating points (read from the same file, once).
"""

from __future__ import annotations

from dataclasses import dataclass

from chestxai.config import ModelConfig
from chestxai.models.classifier import ChestClassifier
from chestxai.models.factory import create_model
from chestxai.models.xrv import is_xrv, published_thresholds, read_xrv_state, xrv_preprocess


@dataclass
class RecipeModel:
    model: ChestClassifier
    #: ``{"size", "mean", "std"}`` for :func:`chestxai.models.preprocess.to_input`; ``size`` is the
    #: model's input side (``model.config["input_size"]``), not the side of the cached rows
    preprocess: dict
    #: the published classifier's operating points for the run's labels (None without a published
    #: head): what the model decides with as it is, before ``evaluate`` chooses thresholds
    operating_points: dict[str, float] | None


def model_for_recipe(
    cfg: ModelConfig,
    label_names: list[str],
    task: str,
    row_size: int,
    mean: float,
    std: float,
    aux_outputs: int = 0,
) -> RecipeModel:
    """Build ``cfg``'s model for data whose cached rows are ``row_size`` px with training-set
    ``mean``/``std`` in [0, 1]. The model input is ``cfg.input_size`` or else the row size, except
    for torchxrayvision weights, whose own resolution and pixel range win (see ``xrv_preprocess``).
    Seed torch's RNG before calling: a new head's initial weights come from it."""
    preprocess = {"size": cfg.input_size or row_size, "mean": mean, "std": std}
    if is_xrv(cfg.weights):  # chest X-ray weights expect their own pixel range and size
        preprocess = xrv_preprocess(cfg.weights, cfg.name, cfg.input_size)
    # a published head needs the xrv file's classifier and operating points: read it once for both
    published = read_xrv_state(cfg.weights, cfg.name) if cfg.published_head else None
    model = create_model(
        cfg.name,
        num_labels=len(label_names),
        task=task,
        head=cfg.head,
        dropout=cfg.dropout,
        aux_outputs=aux_outputs,
        input_size=preprocess["size"],
        pretrained=cfg.pretrained,
        weights=cfg.weights or None,
        freeze_backbone=cfg.freeze_backbone,
        published_head=cfg.published_head,
        label_names=label_names,
        xrv_state=published,
    )
    points = published_thresholds(published, label_names, task) if published is not None else None
    return RecipeModel(model, preprocess, points)
