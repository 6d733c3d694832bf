"""Chest X-ray pretrained starts: torchxrayvision's published DenseNet-121 and ResNet-50 weights.

Spelling (``model.weights`` / ``--weights``)::

    xrv:densenet121-res224-all     a published weights name: from torchxrayvision's cache
                                   ($TORCHXRAYVISION_CACHE_DIR or ~/.torchxrayvision/models_data),
                                   else downloaded from its GitHub release when online
    xrv:/path/to/file.pt           a local torchxrayvision file (its architecture read from its keys)

The package itself is not needed: its files are read by :mod:`chestxai.models.xrv_file` (never
unpickling code) and their torchvision parameter names are the ones timm's ``densenet121`` /
``resnet50`` use, so :func:`to_timm_keys` only drops what is not a parameter of the network
(``op_threshs``, the ResNet wrapper's ``model.`` prefix) and renames pre-0.4 torchvision DenseNet
keys (``norm.1`` -> ``norm1``). The weights expect their own input: pixels scaled to
[-1024, 1024] (``x * 2048 - 1024`` from [0, 1]) at 224 px (DenseNet) or 512 px (ResNet-50);
:func:`xrv_preprocess` returns that as our preprocess dict (mean 0.5, std 1/2048), which training
stores in the checkpoint so that evaluation, explanation and serving feed the model the same.

As a backbone to fine-tune, ``create_model(..., weights="xrv:...")`` loads it under a new head;
to use the published classifier as it is (the findings those weights learnt, with their operating
points), a run with ``train.epochs: 0`` and ``model.published_head`` (:func:`copy_published_head`,
:func:`published_thresholds`).
"""

from __future__ import annotations

import logging
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from chestxai.labels import finding_key
from chestxai.models.pretrained import download_url

log = logging.getLogger(__name__)

PREFIX = "xrv:"
#: x in [0, 1] -> (x - 0.5) / (1 / 2048) = 2048 x - 1024, torchxrayvision's [-1024, 1024] range
MEAN, STD = 0.5, 1.0 / 2048.0
RELEASE = "https://github.com/mlmed/torchxrayvision/releases/download/v1/"
#: torchxrayvision's 18 outputs, in order (``xrv.datasets.default_pathologies``)
PATHOLOGIES = (
    "Atelectasis", "Consolidation", "Infiltration", "Pneumothorax", "Edema", "Emphysema", "Fibrosis",
    "Effusion", "Pneumonia", "Pleural_Thickening", "Cardiomegaly", "Nodule", "Mass", "Hernia",
    "Lung Lesion", "Fracture", "Lung Opacity", "Enlarged Cardiomediastinum",
)  # fmt: skip
#: our architecture name -> torchxrayvision's native resolution for it
NATIVE_SIZE = {"densenet121": 224, "resnet50": 512}
_NAN = math.nan


@dataclass(frozen=True)
class XrvWeights:
    """One published weights file: our architecture, its URL, and the operating points
    (``op_threshs``: torchxrayvision calibrates each output so that this probability maps to 0.5;
    NaN = the output was not trained for that weights set, and torchxrayvision leaves its label
    empty). Values as torchxrayvision 1.5.7's ``models.model_urls`` publishes them
    (``tests/models/test_xrv_reference.py`` compares every entry with the package's)."""

    name: str
    model: str
    filename: str
    op_threshs: tuple[float, ...] = ()
    #: output i's finding, ``""`` where these weights never learnt it (torchxrayvision's ``targets``)
    labels: tuple[str, ...] = PATHOLOGIES

    @property
    def url(self) -> str:
        return RELEASE + self.filename

    @property
    def size(self) -> int:
        return NATIVE_SIZE[self.model]


def _dn(name: str, tag: str, *ops: float) -> XrvWeights:
    """A DenseNet-121 entry; its labels are the findings with an operating point (the package's
    labels are empty exactly where its op_threshs are NaN)."""
    labels = tuple("" if math.isnan(o) else p for p, o in zip(PATHOLOGIES, ops, strict=True))
    filename = f"{tag}-densenet121-d121-tw-lr001-rot45-tr15-sc15-seed0-best.pt"
    return XrvWeights(name, "densenet121", filename, tuple(ops), labels)


#: the published names (torchxrayvision ``model_urls``) with their operating points
CATALOGUE = {
    w.name: w
    for w in (
        _dn("densenet121-res224-all", "nih-pc-chex-mimic_ch-google-openi-kaggle",
            0.07422872, 0.038290843, 0.09814756, 0.0098118475, 0.023601074, 0.0022490358, 0.010060724,
            0.103246614, 0.056810737, 0.026791653, 0.050318155, 0.023985857, 0.01939503, 0.042889766,
            0.053369623, 0.035975814, 0.20204692, 0.05015312),
        _dn("densenet121-res224-nih", "nih",
            0.039117552, 0.0034529066, 0.11396341, 0.0057298196, 0.00045666535, 0.0018880932, 0.012037827,
            0.038744126, 0.0037213727, 0.014730946, 0.016149804, 0.054241467, 0.037198864, 0.0004403434,
            _NAN, _NAN, _NAN, _NAN),
        _dn("densenet121-res224-pc", "pc",
            0.031012505, 0.013347598, 0.081435576, 0.001262615, 0.002587246, 0.0035944257, 0.0023071,
            0.055412333, 0.044385884, 0.042766232, 0.043258056, 0.037629247, 0.005658899, 0.0091741895,
            _NAN, 0.026507627, _NAN, _NAN),
        _dn("densenet121-res224-chex", "chex",
            0.1988969, 0.05710573, _NAN, 0.0531293, 0.1435217, _NAN, _NAN, 0.27212676, 0.07749717, _NAN,
            0.19712369, _NAN, _NAN, _NAN, 0.09932402, 0.09273402, 0.3270967, 0.10888247),
        _dn("densenet121-res224-rsna", "kaggle",
            _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN, 0.13486601, _NAN, _NAN, _NAN, _NAN, _NAN, _NAN,
            _NAN, 0.13511065, _NAN),
        _dn("densenet121-res224-mimic_nb", "mimic_nb",
            0.08558747, 0.011884617, _NAN, 0.0040595434, 0.010733786, _NAN, _NAN, 0.118761964, 0.022924708,
            _NAN, 0.06358637, _NAN, _NAN, _NAN, 0.022143636, 0.017476924, 0.1258702, 0.014020768),
        _dn("densenet121-res224-mimic_ch", "mimic_ch",
            0.09121389, 0.010573786, _NAN, 0.005023008, 0.003698257, _NAN, _NAN, 0.08001232, 0.037242252,
            _NAN, 0.05006329, _NAN, _NAN, _NAN, 0.019866971, 0.03823637, 0.11303808, 0.0069147074),
        # all 18 labelled, two without an operating point (torchxrayvision's op_norm gives them 0.5)
        XrvWeights("resnet50-res512-all", "resnet50", "pc-nih-rsna-siim-vin-resnet50-test512-e400-state.pt", (
            0.51570356, 0.50444704, 0.53787947, 0.50723547, 0.5025118, 0.5035252, 0.5038076, 0.51862943,
            0.5078151, 0.50724894, 0.5056339, 0.510706, 0.5053923, 0.5020846, _NAN, 0.5080557, 0.5138526, _NAN)),
    )
}  # fmt: skip
#: a local copy of a published file is recognised by its name (its labels and operating points apply)
BY_FILENAME = {w.filename: w for w in CATALOGUE.values()}


def is_xrv(weights: str | Path | None) -> bool:
    return isinstance(weights, str) and weights.startswith(PREFIX)


def parse(weights: str) -> tuple[XrvWeights | None, Path | None]:
    """``xrv:NAME`` -> (catalogue entry, None); ``xrv:PATH`` -> (None, path). Unknown -> ValueError."""
    rest = weights[len(PREFIX) :].strip()
    if rest in CATALOGUE:
        return CATALOGUE[rest], None
    path = Path(rest).expanduser()
    if path.suffix or os.sep in rest:
        if not path.is_file():
            raise FileNotFoundError(
                f"--weights {weights}: torchxrayvision weights file {path} does not exist"
            )
        return None, path
    raise ValueError(
        f"--weights {weights}: unknown torchxrayvision weights {rest!r}; known: {sorted(CATALOGUE)}, "
        f"or xrv:PATH for a local file"
    )


def cache_dirs() -> list[Path]:
    """Where torchxrayvision keeps downloaded weights (the first is where we download to)."""
    root = os.environ.get("TORCHXRAYVISION_CACHE_DIR")
    dirs = [Path(root).expanduser(), Path(root).expanduser() / "models_data"] if root else []
    return dirs + [Path("~/.torchxrayvision/models_data").expanduser()]


def resolve_file(weights: str) -> tuple[Path, XrvWeights | None]:
    """The local file for an ``xrv:`` spelling: given, cached, or downloaded (online only)."""
    entry, path = parse(weights)
    if path is not None:
        return path, None
    assert entry is not None
    import torch.hub

    candidates = [d / entry.filename for d in cache_dirs()]
    candidates.append(Path(torch.hub.get_dir()) / "checkpoints" / entry.filename)
    for candidate in candidates:
        if candidate.is_file():
            log.info("using cached torchxrayvision weights %s", candidate)
            return candidate, entry
    dest = cache_dirs()[0] / entry.filename
    advice = (
        f"On a connected machine run `wget {entry.url} -O {entry.filename}` and copy the file to {dest} "
        f"(looked in: {'; '.join(map(str, candidates))}), or pass --weights xrv:PATH"
    )
    return download_url(entry.url, dest, advice), entry


def xrv_preprocess(weights: str, model_name: str, input_size: int = 0) -> dict:
    """The preprocess dict these weights expect: their resolution (``input_size`` overrides it)
    and torchxrayvision's [-1024, 1024] pixel range. ``model_name`` gives a local file's
    resolution (:func:`read_xrv_state` checks that the file is that architecture)."""
    entry, _ = parse(weights)
    size = entry.size if entry is not None else NATIVE_SIZE.get(model_name)
    if size is None:
        raise ValueError(
            f"--weights {weights}: torchxrayvision weights exist for {sorted(NATIVE_SIZE)}, not {model_name}"
        )
    if input_size and input_size != size:
        log.warning("%s was trained at %d px; model.input_size=%d overrides that", weights, size, input_size)
    return {"size": int(input_size or size), "mean": MEAN, "std": STD}


def _read(path: Path) -> dict:
    from chestxai.models.xrv_file import read_xrv_file

    return read_xrv_file(path)


_OLD_DENSENET_KEY = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.([12])\.(weight|bias|running_\w+)$")


def to_timm_keys(state: dict) -> dict:
    """torchxrayvision / torchvision parameter names -> timm's (identical for densenet121 and
    resnet50 once the wrapper's prefix, ``op_threshs`` and pre-0.4 DenseNet names are handled)."""
    out = {}
    for key, value in state.items():
        if key == "op_threshs" or key.startswith("upsample."):
            continue
        key = key.removeprefix("module.").removeprefix("model.")
        key = _OLD_DENSENET_KEY.sub(r"\1\2.\3", key)
        out[key] = value
    return out


def architecture_of(state: dict, source: Path | str) -> str:
    """Which of our architectures a torchxrayvision state dict is (by its parameter names)."""
    keys = set(to_timm_keys(state))
    if "features.conv0.weight" in keys and "features.denseblock4.denselayer16.conv2.weight" in keys:
        return "densenet121"
    if "conv1.weight" in keys and "layer3.5.conv3.weight" in keys and "layer4.2.conv3.weight" in keys:
        return "resnet50"
    raise ValueError(
        f"{source} is neither a torchxrayvision DenseNet-121 nor a ResNet-50 (parameters e.g. {sorted(keys)[:3]})"
    )


@dataclass(frozen=True)
class XrvState:
    """A torchxrayvision file read once: timm-keyed parameters (the 18-output classifier included)."""

    state: dict
    file: Path
    arch: str
    entry: XrvWeights | None
    op_threshs: tuple[float, ...]

    @property
    def classifier(self) -> tuple:
        key = "classifier" if self.arch == "densenet121" else "fc"
        return self.state[f"{key}.weight"], self.state[f"{key}.bias"]

    @property
    def labels(self) -> tuple[str, ...]:
        """Each output's finding, ``""`` where never learnt (a file of unknown origin: all 18)."""
        return self.entry.labels if self.entry is not None else PATHOLOGIES

    def operating_point(self, output: int) -> float:
        """Output ``output``'s published operating point (0.5 where the weights state none)."""
        ops = self.op_threshs
        return float(ops[output]) if output < len(ops) and not math.isnan(ops[output]) else 0.5

    def load_rows(self, fc, rows: list[int]) -> None:
        """Copy the published classifier's ``rows`` into the linear layer ``fc``."""
        import torch

        weight, bias = self.classifier
        with torch.no_grad():
            fc.weight.copy_(weight[rows])
            fc.bias.copy_(bias[rows])


def read_xrv_state(weights: str, model_name: str | None = None) -> XrvState:
    """Resolve and read an ``xrv:`` file once; ``model_name`` must be its architecture when given."""
    file, entry = resolve_file(weights)
    raw = _read(file)
    arch = architecture_of(raw, file)
    if model_name is not None and arch != model_name:
        raise ValueError(
            f"--weights {weights} is a torchxrayvision {arch}; use it with --model {arch} "
            f"(model.name: {arch}), not {model_name}"
        )
    ops = entry.op_threshs if entry is not None else ()
    if not ops and "op_threshs" in raw and raw["op_threshs"].numel() == len(PATHOLOGIES):
        ops = tuple(float(t) for t in raw["op_threshs"])  # a local file's own operating points
    if entry is None and file.name in BY_FILENAME:  # a local copy of a published file
        entry = BY_FILENAME[file.name]
        ops = ops or entry.op_threshs
    return XrvState(to_timm_keys(raw), file, arch, entry, ops)


def published_rows(xs: XrvState, label_names: list[str] | tuple[str, ...], task: str) -> list[int]:
    """The published classifier's output for each of a run's labels, matched by name (case, spaces
    and underscores ignored; NIH's ``Infiltrate`` is ``Infiltration``). Only binary and
    multi-label tasks have one sigmoid output per finding as torchxrayvision does; a label the
    weights never learnt is an error naming the findings they did."""
    if task not in ("binary", "multilabel"):
        raise ValueError(
            f"model.published_head: a {task} task has no per-finding outputs to take from {xs.file.name}; "
            "use it for binary or multi-label tasks, or drop published_head to train a new head"
        )
    learnt = {finding_key(name): i for i, name in enumerate(xs.labels) if name}
    missing = [name for name in label_names if finding_key(name) not in learnt]
    if missing:
        raise ValueError(
            f"model.published_head: {xs.file.name} has no output for {', '.join(map(repr, missing))}; "
            f"its findings: {', '.join(n for n in xs.labels if n)}. Drop published_head to train a new head"
        )
    return [learnt[finding_key(name)] for name in label_names]


def copy_published_head(model, xs: XrvState, label_names, task: str) -> None:
    """Start ``model``'s pooled head from the published classifier's rows for ``label_names``:
    torchxrayvision's model as it is, for the run's findings (to evaluate or explain it directly
    with ``train.epochs: 0``, or to fine-tune from it)."""
    import torch

    rows = published_rows(xs, label_names, task)
    fc = getattr(model.head, "fc", None)
    if not isinstance(fc, torch.nn.Linear) or fc.out_features != len(rows):
        raise ValueError("model.published_head needs the pooled head (model.head: pooled)")
    xs.load_rows(fc, rows)


def published_thresholds(xs: XrvState, label_names: list[str], task: str) -> dict[str, float]:
    """The published operating point of each of a run's findings (0.5 where the weights state
    none): what a run of the published classifier as it is (``train.epochs: 0``) decides with until
    ``chestxai evaluate`` chooses thresholds on val. torchxrayvision's ``op_norm`` maps each of
    these to 0.5, so the decisions are the package's."""
    rows = published_rows(xs, label_names, task)
    return {name: xs.operating_point(i) for name, i in zip(label_names, rows, strict=True)}
