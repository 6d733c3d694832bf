"""The prepared cache's key: one hash over every input that changes the cached bytes.

Why a content key rather than a name: re-running ``prepare`` with the same inputs must reuse the
finished cache (hours on 100k images), and any change (a file replaced, another size, another
reader option, a new resize method) must land in a new directory instead of silently mixing
old and new rows. Files are keyed by size and mtime, not content: hashing 40 GB of images would
cost as much as decoding them.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from chestxai.data.decode import DecodeSettings
from chestxai.data.table import ImageTable

#: Bump when the bytes written for the same inputs change (resize method, rounding, layout).
FORMAT_VERSION = 1
RESIZE_METHOD = "pil-lanczos-float32;mask-box-threshold0.5"


def cache_key(
    table: ImageTable, root: Path | None, options: dict[str, Any], size: int, decode: DecodeSettings
) -> str:
    """SHA-256 over source, root, reader options, table content, files (or arrays), size, decode."""
    h = hashlib.sha256()

    def add(tag: str, value: Any) -> None:
        h.update(tag.encode())
        h.update(
            value if isinstance(value, bytes) else json.dumps(value, sort_keys=True, default=str).encode()
        )

    add("version", [FORMAT_VERSION, RESIZE_METHOD])
    add("source", table.source)
    add("root", str(Path(root).resolve()) if root is not None else "")
    base = table.root if table.root is not None else root
    add("options", options)
    add("size", size)
    add("decode", decode.as_dict())
    add("labels", [table.label_names, table.task])
    add("labels.bytes", np.ascontiguousarray(table.labels).tobytes())
    for name, df in (("frame", table.frame), ("boxes", table.boxes), ("masks", table.masks)):
        add(name + ".cols", list(map(str, df.columns)))
        if len(df):
            add(name, pd.util.hash_pandas_object(df.astype(str), index=False).to_numpy().tobytes())
    if table.arrays is not None:
        add("arrays.shape", [list(table.arrays.shape), str(table.arrays.dtype)])
        if table.arrays.dtype == object:  # ragged in-memory images (one 2-D array per row)
            digest = hashlib.blake2b(digest_size=32)
            for a in table.arrays:
                digest.update(pickle.dumps(a, protocol=4))
            add("arrays", digest.digest())
        else:
            add("arrays", hashlib.blake2b(np.ascontiguousarray(table.arrays).data, digest_size=32).digest())
    else:
        add("files", [_stat(p) for p in image_paths(table, base)])
    return h.hexdigest()


def cache_dir_name(source: str, size: int, key: str) -> str:
    """``<source>-<size>px-<key[:10]>``: readable, and distinct for distinct inputs."""
    slug = "".join(c if c.isalnum() or c in "-_." else "_" for c in source) or "table"
    return f"{slug}-{size}px-{key[:10]}"


def resolve(path: str, root: Path | None) -> Path:
    """A table path as a file path: relative paths are relative to the reader's root."""
    p = Path(str(path)).expanduser()
    return p if p.is_absolute() or root is None else Path(root) / p


def image_paths(table: ImageTable, root: Path | None) -> list[Path]:
    return [resolve(p, root) for p in table.frame["path"].astype(str)]


def _stat(p: Path) -> tuple[int, int]:
    try:
        st = p.stat()
    except OSError:
        return (-1, -1)
    return (st.st_size, st.st_mtime_ns)
