"""Reading torchxrayvision weight files without running code from them.

torchxrayvision publishes two kinds of files (``torchxrayvision/models.py``, release ``v1``):

* ResNet-50 (``resnet50-res512-all``): a plain state dict of a torchvision ``resnet50`` with a
  1-channel ``conv1`` and an 18-output ``fc``. ``torch.load(weights_only=True)`` reads it.
* DenseNet-121 (``densenet121-res224-*``): a whole pickled ``torchxrayvision.models.DenseNet``
  object; torchxrayvision itself loads it with a full unpickle and calls ``.state_dict()``.

A full unpickle may run any code the file names, so it is never done here. For a whole-model
pickle in torch's zip format we stay inside ``weights_only=True``: every class the pickle names
(``torchxrayvision.models.DenseNet``, ``torch.nn.modules.conv.Conv2d``, ...) is allowlisted as
:class:`PickledObject`, an inert record of the attributes the pickle stores (no methods run, no
module is imported), and the parameters are then collected from those records' ``_parameters`` /
``_buffers`` / ``_modules``, exactly what ``Module.state_dict()`` would return. A file in torch's
*legacy* (pre-1.6, non-zip) format stores module classes as persistent ids that ``weights_only``
refuses; that file is refused with the one-line conversion that makes it a plain state dict.
"""

from __future__ import annotations

import logging
import pickle
import zipfile
from pathlib import Path

import torch

log = logging.getLogger(__name__)


class PickledObject:
    """Stands in for any class a whole-model pickle names: stores what the pickle gives it."""

    def __init__(self, *args, **kwargs):
        self.pickled_args = (args, kwargs)


def convert_hint(path: Path) -> str:
    return (
        'Convert it once where torchxrayvision is installed: `python -c "import torch, torchxrayvision as xrv; '
        "m = xrv.models.get_model('densenet121-res224-all'); torch.save(m.state_dict(), 'xrv-densenet121.pt')\"` "
        f"(use the weights name that {path.name} belongs to), then pass --weights xrv:xrv-densenet121.pt"
    )


def read_xrv_file(path: Path) -> dict[str, torch.Tensor]:
    """The parameters of a torchxrayvision weights file (plain state dict or whole pickled model)."""
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as exc:
        if not zipfile.is_zipfile(path):
            raise ValueError(
                f"{path} is a whole pickled model in torch's legacy (pre-1.6) format, which cannot be read "
                f"without running code from the file ({_first_line(exc)}); chestxai refuses to do that. "
                + convert_hint(path)
            ) from None
        obj = _load_with_inert_classes(path)
    if isinstance(obj, dict) and isinstance(obj.get("state_dict"), dict):
        obj = obj["state_dict"]
    if isinstance(obj, PickledObject):
        return module_state(obj, path)
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return dict(obj)
    raise ValueError(
        f"{path} holds a {type(obj).__name__}, not torchxrayvision weights (a model or state dict)"
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:200]


def _load_with_inert_classes(path: Path):
    """``weights_only=True`` with every class the pickle names allowlisted as :class:`PickledObject`."""
    names = torch.serialization.get_unsafe_globals_in_checkpoint(path)
    log.info("reading %s as a pickled model; its %d classes are read as inert records", path, len(names))
    log.debug("classes named by %s: %s", path, names)
    try:
        with torch.serialization.safe_globals([(PickledObject, name) for name in names]):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError) as exc:
        raise ValueError(
            f"{path} is a pickled object that cannot be read without running code from it "
            f"({_first_line(exc)}); chestxai refuses to do that. " + convert_hint(path)
        ) from None


def module_state(obj: PickledObject, path: Path, prefix: str = "") -> dict[str, torch.Tensor]:
    """What ``Module.state_dict()`` returns, from the inert record of a pickled module."""
    fields = vars(obj)
    if "_modules" not in fields or "_parameters" not in fields:
        raise ValueError(
            f"{path} holds a pickled object that is not a torch module; not torchxrayvision weights"
        )
    out: dict[str, torch.Tensor] = {}
    skip = set(fields.get("_non_persistent_buffers_set") or ())
    for group in ("_parameters", "_buffers"):
        for name, value in (fields.get(group) or {}).items():
            if isinstance(value, torch.Tensor) and name not in skip:
                out[prefix + name] = value.detach()
    for name, child in (fields.get("_modules") or {}).items():
        if isinstance(child, PickledObject):
            out.update(module_state(child, path, f"{prefix}{name}."))
    return out
