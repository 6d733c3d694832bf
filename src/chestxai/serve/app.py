"""The HTTP API and the web viewer (FastAPI): a thin layer over the library.

``POST /v1/predict``: decode the upload with the project's decoder, resize as ``prepare`` does,
one batched forward (:mod:`.batching`), decisions at the run's operating thresholds, then, when
asked, a heatmap + boxes (``explain=METHOD``, ``label=NAME``; by default the top *positive* finding,
:mod:`chestxai.explain.choice`; boxes in the original image's pixels unless ``space=model``,
:mod:`chestxai.explain.spaces`) through the library's Explainer and uncertainty
(``uncertainty=mc-dropout|tta``) through ``predict_with_uncertainty``, both in a small queue of their
own per model (:mod:`.heavy`). ``GET /v1/models``, ``GET /v1/models/NAME/card`` (:mod:`.card`),
``GET /healthz``, OpenAPI at ``/docs`` (offline, :mod:`.docs`), the viewer at ``/``. Limits:
:mod:`.limits` (one deadline per request: :mod:`.deadline`; Host names: :mod:`.hosts`).

Models are loaded before the app is made (:func:`chestxai.serve.models.load_all`) and never
written to. Every refusal is JSON ``{"detail": "..."}`` with a status that says why; the service
keeps serving after any bad request. Every answer has a response model (:mod:`.schemas`), so
``/docs`` shows typed answers.
"""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from chestxai import __version__
from chestxai.explain.choice import ExplainedTarget, choose_target
from chestxai.explain.spaces import SPACES
from chestxai.serve.batching import MicroBatcher, QueueFullError
from chestxai.serve.card import model_card
from chestxai.serve.deadline import DeadlineMiddleware, timeout_detail
from chestxai.serve.decode_gate import DecodeGate
from chestxai.serve.dicom_sr import answer_dicom_sr, check_format
from chestxai.serve.docs import add_offline_docs
from chestxai.serve.heavy import HeavyQueue
from chestxai.serve.hosts import allow_hosts
from chestxai.serve.inputs import decode_file, to_cache_pixels
from chestxai.serve.limits import (
    Limits,
    RequestError,
    TempFolder,
    check_content_length,
    check_type,
    decode_refusals,
)
from chestxai.serve.models import ServedModel
from chestxai.serve.render import display_image, heatmap_picture, png_data_url
from chestxai.serve.schemas import ErrorDetail, Health, ModelCard, Models, Prediction
from chestxai.serve.upload import UploadBudget, receive_upload

log = logging.getLogger(__name__)

VIEWER = Path(__file__).parent / "viewer"
DISCLAIMER = "research software, not for clinical use"
UPLOAD_SCHEMA = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            }
        },
    }
}
#: the refusals of ``POST /v1/predict`` besides 422 (FastAPI documents its own; ours has a string detail)
REFUSALS: dict[int | str, dict[str, Any]] = {
    status: {"model": ErrorDetail, "description": why}
    for status, why in [
        (400, "the Content-Length header is not a number, or the multipart boundary is too long"),
        (404, "model= names no served model"),
        (413, "the upload or its image is larger than the service's limits"),
        (415, "the upload is not a PNG, JPEG or DICOM file"),
        (
            503,
            "a queue, the line of uploads waiting to decode or the upload budget is full: retry after a second (Retry-After)",
        ),
        (504, "the request took longer than the service's time limit"),
    ]
}


def create_app(models: dict[str, ServedModel], limits: Limits | None = None) -> FastAPI:
    """The app serving ``models`` (name -> loaded model) under ``limits``."""
    if not models:
        raise ValueError("create_app needs at least one loaded model")
    limits = limits or Limits()
    batchers = {
        name: MicroBatcher(m.forward, limits.max_batch, limits.max_wait_ms, limits.max_queue, name)
        for name, m in models.items()
    }
    heavy = {name: HeavyQueue(name, limits.heavy_queue) for name in models}
    uploads = UploadBudget(limits)
    state: dict[str, Any] = {}
    gate = DecodeGate(limits.max_decodes, limits.max_queue)  # bounds decode memory (issue 20, item 17)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        state["tmp"] = TempFolder()
        app.state.temp_folder = state["tmp"].path
        for b in batchers.values():
            b.start()
        try:
            yield
        finally:
            for b in batchers.values():
                b.stop()
            state.pop("tmp").close()

    app = FastAPI(
        title="chestxai",
        version=__version__,
        description=f"Chest X-ray classifier with explanations. **{DISCLAIMER.capitalize()}.**",
        lifespan=lifespan,
        docs_url=None,  # served from local files below (the default page needs a CDN)
        redoc_url=None,
    )
    add_offline_docs(app, "chestxai")
    app.state.models = models
    app.state.batchers = batchers
    app.state.limits = limits
    app.state.heavy = heavy
    allow_hosts(app, limits.allowed_hosts)
    app.add_middleware(DeadlineMiddleware, seconds=limits.timeout_s)  # outermost: all of a request
    app.state.decode_gate = gate

    @app.get("/healthz", response_model=Health)
    def healthz() -> dict:
        return {
            "status": "ok",
            "models": list(models),
            "queue": {n: b.depth for n, b in batchers.items()},
            "forwards": {n: b.batches for n, b in batchers.items()},
            "images": {n: b.items for n, b in batchers.items()},
            "heavy": {n: q.stats() for n, q in heavy.items()},
            "uploads": {"in_flight": uploads.uploads, "mb": round(uploads.bytes / (1024 * 1024), 3)},
        }

    @app.get("/v1/models", response_model=Models)
    def list_models() -> dict:
        from chestxai.explain import list_methods

        return {
            "models": [m.info() for m in models.values()],
            "explain_methods": list_methods(),
            "default": next(iter(models)),
            "max_upload_mb": limits.max_upload_bytes / (1024 * 1024),
            "disclaimer": DISCLAIMER,
        }

    @app.get("/v1/models/{name}/card", response_model=ModelCard, responses={404: {"model": ErrorDetail}})
    def card(name: str) -> dict | JSONResponse:
        try:
            return model_card(_pick(models, name))
        except RequestError as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status)

    @app.post(
        "/v1/predict",
        openapi_extra=UPLOAD_SCHEMA,
        response_model=Prediction,
        response_model_exclude_unset=True,  # image and image_size only when display=true
        responses=REFUSALS,
    )
    async def predict(
        request: Request,
        explain: str | None = Query(None, description="CAM method, e.g. gradcam (see /v1/models)"),
        label: str | None = Query(
            None, description="label to explain (default: the top-probability positive finding)"
        ),
        space: str = Query("original", description="boxes in 'original' image pixels or the 'model' grid"),
        values: bool = Query(False, description="also return the raw heatmap values (model grid)"),
        uncertainty: str | None = Query(None, description="mc-dropout or tta"),
        model: str | None = Query(None, description="served model name (default: the first)"),
        passes: int = Query(30, ge=2, le=200, description="uncertainty passes"),
        display: bool = Query(False, description="also return the decoded image as PNG (the viewer does)"),
        answer_format: str = Query(
            "json", alias="format", description="json, or dicom-sr: a DICOM upload answered with its DICOM SR"
        ),
    ) -> Any:
        target = ticket = None
        try:
            served = _pick(models, model)
            _check_query(served, explain, label, uncertainty)
            check_format(answer_format)
            if uncertainty is not None and passes > limits.max_passes:
                raise RequestError(
                    422, f"passes={passes}: the service allows at most {limits.max_passes} (--max-passes)"
                )
            if space not in SPACES:
                raise RequestError(422, f"space={space!r}: choose one of {', '.join(SPACES)}")
            declared = check_content_length(request.headers.get("content-length"), limits)
            ticket = uploads.open()  # 503 when --max-uploads are in flight
            ticket.hold(declared or 0)  # 503 when the temporary folder's budget is spent
            target = state["tmp"].new_file()
            upload = await receive_upload(
                request.stream(), request.headers.get("content-type"), target, limits, ticket
            )
            kind = check_type(upload.path, upload.filename, upload.content_type)
            if answer_format == "dicom-sr":  # the SR bytes (application/dicom), not a Prediction
                return await answer_dicom_sr(
                    served,
                    batchers[served.name],
                    heavy[served.name],
                    gate,
                    limits,
                    upload,
                    kind,
                    explain,
                    label,
                )
            return await _answer(  # written as a Prediction; the deadline is DeadlineMiddleware's
                served,
                batchers[served.name],
                heavy[served.name],
                gate,
                limits,
                upload,
                kind,
                explain,
                label,
                uncertainty,
                passes,
                display,
                (space, values),
            )
        except RequestError as exc:
            return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers=exc.headers)
        except QueueFullError as exc:
            return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": "1"})
        except TimeoutError:
            return JSONResponse({"detail": timeout_detail(limits.timeout_s)}, status_code=504)
        finally:
            if target is not None:
                target.unlink(missing_ok=True)
            if ticket is not None:
                ticket.close()

    app.mount("/", StaticFiles(directory=VIEWER, html=True), name="viewer")
    return app


def _pick(models: dict[str, ServedModel], name: str | None) -> ServedModel:
    if name is None:
        return next(iter(models.values()))
    if name not in models:
        raise RequestError(
            404, f"model={name!r} is not served; choose one of {list(models)} (GET /v1/models)"
        )
    return models[name]


def _check_query(
    served: ServedModel, explain: str | None, label: str | None, uncertainty: str | None
) -> None:
    """Every query mistake, before the upload is read."""
    if label is not None and label not in served.label_names:
        raise RequestError(422, f"label={label!r} is not one of {served.name}'s labels {served.label_names}")
    if explain is not None:
        from chestxai.explain import list_methods

        if explain not in list_methods():
            raise RequestError(422, f"explain={explain!r}: choose one of {', '.join(list_methods())}")
    if uncertainty is not None and uncertainty not in served.uncertainty_methods():
        raise RequestError(
            422,
            f"uncertainty={uncertainty!r} is not available for {served.name}: choose one of "
            f"{served.uncertainty_methods()} (MC dropout needs a model trained with dropout > 0)",
        )


def _decode(
    path: Path, limits: Limits, size: int, shown: bool
) -> tuple[np.ndarray, np.ndarray | None, tuple]:
    """The shared decoder under the service's pixel limit -> (model pixels, display image, shape)."""
    with decode_refusals("decode the image"):
        unit = decode_file(path, limits.decode)
    return to_cache_pixels(unit, size), (display_image(unit) if shown else None), unit.shape


async def _answer(
    served: ServedModel,
    batcher: MicroBatcher,
    heavy: HeavyQueue,
    gate: DecodeGate,
    limits: Limits,
    upload,
    kind: str,
    explain: str | None,
    label: str | None,
    uncertainty: str | None,
    passes: int,
    display: bool,
    view: tuple[str, bool] = ("original", False),
) -> dict:
    pixels, shown, shape = await gate.run(
        _decode, upload.path, limits, served.resize_to, display or bool(explain)
    )
    probs = np.asarray(await batcher.submit(pixels), dtype=np.float64)
    decisions = served.decisions(probs[None])[0]
    t = served.thresholds
    body: dict[str, Any] = {
        "model": served.name,
        "description": served.description,
        "file": {
            "name": upload.filename,
            "format": kind,
            "bytes": upload.size,
            "height": shape[0],
            "width": shape[1],
        },
        "labels": [
            {
                "name": n,
                "probability": float(probs[j]),
                "threshold": float(t.values[n]),
                "decision": bool(decisions[j]),
            }
            for j, n in enumerate(served.label_names)
        ],
        "threshold_source": t.source,
        "threshold_policy": t.policy,
        "explanation": None,
        "uncertainty": None,
        "disclaimer": DISCLAIMER,
    }
    if display:
        body["image"] = png_data_url(shown)
        body["image_size"] = [int(shown.shape[1]), int(shown.shape[0])]
    if explain:
        target = choose_target(served.label_names, probs, decisions, label)
        body["explanation"] = await heavy.run(
            _explain, served, pixels, target, explain, shown.shape, shape[:2], view
        )
    # the run's set or triage bin when it was calibrated (`chestxai uncertainty RUN --conformal`)
    body["conformal"] = conformal_answer(served.conformal, probs) if served.conformal is not None else None
    if uncertainty:
        u = await heavy.run(served.uncertainty, pixels[None], uncertainty, passes)
        body["uncertainty"] = {
            "method": uncertainty,
            "passes": passes,
            "mean": {n: float(u["mean"][0, j]) for j, n in enumerate(served.label_names)},
            "std": {n: float(u["std"][0, j]) for j, n in enumerate(served.label_names)},
        }
    return body


def _explain(
    served: ServedModel,
    pixels: np.ndarray,
    target: ExplainedTarget,
    method: str,
    display_shape: tuple,
    original_shape: tuple,
    view: tuple[str, bool],
    should_stop=None,
) -> dict:
    from chestxai.explain import UnsupportedMethodError
    from chestxai.uncertainty.cancel import check_stop

    check_stop(should_stop)  # the request was abandoned while it waited

    try:
        heat = served.explain(pixels[None], [target.index], method)[0]
    except UnsupportedMethodError as exc:
        raise RequestError(422, f"explain={method!r}: {exc}") from None
    space, values = view
    return {
        "method": method,
        "label": target.name,
        "selected_by": target.selected_by,
        "positive": target.positive,
        "note": target.note,
        **heatmap_picture(heat, display_shape[:2], original_shape, space, values),
    }


def conformal_answer(cal, probs: np.ndarray) -> dict:
    """The ``conformal`` field: this image's set (or triage bin) and what it guarantees."""
    from chestxai.uncertainty.conformal import SEPARATOR

    applied = {k: v[0] for k, v in cal.apply(np.asarray(probs, np.float64)[None]).items()}
    members = applied.get("conformal_set")
    return {
        "method": cal.method,
        "alpha": cal.calibration.alpha,
        "set": members.split(SEPARATOR) if members else ([] if members is not None else None),
        "triage": applied.get("triage"),
        "guarantee": cal.guarantee(),
    }
