"""The service's answers as pydantic models: the OpenAPI page (``/docs``) shows their fields.

Each model restates, field for field and in the same order, the dict an endpoint of
:mod:`chestxai.serve.app` builds, so a response is the same JSON it was before the models:
FastAPI validates the dict against the model and writes the fields the dict set
(``response_model_exclude_unset``: ``image`` and ``image_size`` appear only when asked for).
``extra="forbid"``: a key the endpoint adds without declaring it here fails the API tests
instead of vanishing from the answer, so the page never falls behind the service.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class Answer(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ErrorDetail(Answer):
    """Every refusal of the service: the status says which kind, ``detail`` says why and the fix."""

    detail: str


class Health(Answer):
    status: str = Field(description='"ok" while the service answers')
    models: list[str] = Field(description="served model names, the default first")
    queue: dict[str, int] = Field(description="images waiting for a forward, per model")
    forwards: dict[str, int] = Field(description="batched forwards run since the start, per model")
    images: dict[str, int] = Field(description="images scored since the start, per model")
    heavy: dict[str, dict[str, int]] = Field(
        default_factory=dict,
        description="explain/uncertainty jobs per model: running, waiting, and cancelled (stopped "
        "between passes after their request timed out) since the start",
    )
    uploads: dict[str, float] = Field(
        default_factory=dict, description="uploads in flight and the MB they hold in the temporary folder"
    )


class ModelInfo(Answer):
    name: str
    run: str = Field(description="the run directory the model was loaded from")
    model: str = Field(description="architecture")
    task: str
    labels: list[str]
    thresholds: dict[str, float] = Field(description="operating threshold per label")
    threshold_source: str
    threshold_policy: str | None
    input_size: int = Field(description="the side of the square the network sees")
    resize_to: int = Field(description="the side a decoded image is resized to first (the cache size)")
    checkpoint_epoch: int | None
    uncertainty: list[str] = Field(description="uncertainty methods this model can do")


class Models(Answer):
    models: list[ModelInfo]
    explain_methods: list[str]
    default: str = Field(description="the model answering when a request names none")
    max_upload_mb: float
    disclaimer: str


class MetricValue(Answer):
    value: float | None
    ci_low: float | None
    ci_high: float | None


class ModelCard(Answer):
    """What a served model is, its test metrics with intervals, and what it is not for (read from
    the run's files)."""

    name: str
    model: str
    task: str
    labels: list[str]
    input_size: int
    resize_to: int
    checkpoint_epoch: int | None
    training_data: dict[str, str | int | float | bool]
    intended_use: str
    evaluated: bool = Field(description="metrics.json was found in the run")
    split: str | None
    n_images: int | None
    ci_level: float | None = Field(description="level of the bootstrap intervals (e.g. 0.95)")
    metrics: dict[str, MetricValue] = Field(description="summary metrics (macro averages) with intervals")
    per_class_roc_auc: dict[str, MetricValue]
    note: str | None


class FileInfo(Answer):
    name: str | None = Field(description="the upload's file name, as the client sent it")
    format: str = Field(description="the decoder that read it (png, jpeg, dicom ...)")
    bytes: int
    height: int
    width: int


class LabelAnswer(Answer):
    name: str
    probability: float
    threshold: float
    decision: bool = Field(description="probability at or above the threshold (after any temperature)")


class Box(Answer):
    x: int
    y: int
    w: int
    h: int
    score: float = Field(description="share of the heatmap's mass inside the box")
    fraction: list[float] = Field(description="x, y, w, h as fractions of the space's width and height")


class Explanation(Answer):
    method: str
    label: str = Field(description="the finding explained")
    selected_by: str = Field(
        description="'requested' (label=), 'top positive finding' (the default), or "
        "'top score, no positive finding' (nothing positive: a negative finding is shown)"
    )
    positive: bool = Field(description="the model decided the explained finding positive")
    note: str | None = Field(description="said when the explained finding is negative")
    heatmap: str = Field(description="colour heatmap, data:image/png;base64 at the display image's shape")
    colormap: str = Field(description="OpenCV colormap of the heatmap picture (0 -> blue, 1 -> red for jet)")
    value_range: list[float] = Field(description="[min, max] of the raw heatmap (the colour bar's range)")
    space: str = Field(description="pixel space of the boxes: 'original' image or 'model' grid")
    space_size: list[int] = Field(description="[width, height] of that space")
    boxes: list[Box]
    box_threshold: float | str
    values: list[list[float]] | None = Field(
        description="values=true: the raw heatmap, rows of the model grid (stretch to the original to overlay)"
    )
    values_size: list[int] = Field(description="[width, height] of the model grid the raw heatmap is on")


class Uncertainty(Answer):
    method: str
    passes: int
    mean: dict[str, float]
    std: dict[str, float]


class ConformalAnswer(Answer):
    method: str = Field(description="lac / aps (multi-class sets), triage (binary) or crc (multi-label FNR)")
    alpha: float
    set: list[str] | None = Field(description="the classes or findings in the set (None for triage)")
    triage: str | None = Field(description="binary runs: negative, positive or refer")
    guarantee: str = Field(description="what holds, marginally, if this case is exchangeable with val")


class Prediction(Answer):
    model: str
    description: str
    file: FileInfo
    labels: list[LabelAnswer]
    threshold_source: str
    threshold_policy: str | None
    explanation: Explanation | None = Field(description="present when explain=METHOD was asked")
    uncertainty: Uncertainty | None = Field(description="present when uncertainty=METHOD was asked")
    conformal: ConformalAnswer | None = Field(
        description="the image's conformal set or triage bin when the run has a calibration "
        "(`chestxai uncertainty RUN --conformal`), else null"
    )
    disclaimer: str
    image: str | None = Field(None, description="display=true: the decoded image, data:image/png;base64")
    image_size: list[int] | None = Field(None, description="display=true: [width, height] of image")
