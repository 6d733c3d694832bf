"""``/docs`` that works offline: Swagger UI from files the service serves itself, not from a CDN.

FastAPI's own ``/docs`` page loads Swagger UI's script, stylesheet and favicon from a CDN, so on
a hospital network or a laptop without internet it is a blank page. The assets ship in the
``fastapi-offline`` package (in the ``serve`` extra); they are mounted at ``/docs-assets`` and
``/docs`` is FastAPI's page pointed at them. ReDoc (CDN only) is switched off. Without the package
``/docs`` says how to install it and links the OpenAPI JSON, which always works.
"""

from __future__ import annotations

import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

log = logging.getLogger(__name__)

ASSETS_URL = "/docs-assets"


def swagger_assets() -> Path | None:
    """The folder holding swagger-ui-bundle.js / swagger-ui.css / favicon.png, or None."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def add_offline_docs(app: FastAPI, title: str) -> None:
    """Serve ``/docs`` (and its assets) from local files; call before the viewer's ``/`` mount."""
    assets = swagger_assets()
    if assets is not None:
        app.mount(ASSETS_URL, StaticFiles(directory=assets), name="docs-assets")
    else:
        log.warning("fastapi-offline is not installed: /docs links the OpenAPI JSON only")

    @app.get("/docs", include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        if assets is None:
            return HTMLResponse(
                f"<!doctype html><title>{title} API</title><p>The interactive API page needs "
                "<code>pip install 'chestxai[serve]'</code> (fastapi-offline). The API's description: "
                f'<a href="{root}/openapi.json">openapi.json</a>.</p>'
            )
        return get_swagger_ui_html(
            openapi_url=f"{root}/openapi.json",
            title=f"{title} API",
            swagger_js_url=f"{root}{ASSETS_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{ASSETS_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{ASSETS_URL}/favicon.png",
        )
