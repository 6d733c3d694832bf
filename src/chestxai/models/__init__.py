"""Classifiers: a registry of backbones (timm), task heads, checkpoints and ensembles.

Entry points: :func:`create_model`, :func:`list_models`, :func:`load_checkpoint`.
"""

from chestxai.models.factory import create_model, list_models

__all__ = ["create_model", "list_models"]
