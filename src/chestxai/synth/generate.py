"""``chestxai synth generate``: translate N images of one domain and write a folder the csv reader loads.

``DIR/images/<direction>-<source id>.png`` and ``DIR/manifest.csv`` (names from
:class:`chestxai.rundir.GeneratedDir`), one row per image::

    path           images/a2b-img00012.png (relative to DIR)
    label          the target domain's text ("Pneumonia", "not:Pneumothorax", "No Finding"; for a
                   domain that fixes one label, NAME or not:NAME: "No Finding" of PneumoniaMNIST is
                   "not:Pneumonia"): the csv reader's default label column, which it loads as the
                   binary task NAME (1 / 0), so `data summary` / `prepare` need no options
    <LABEL>...     the source's label columns the target domain fixes, 0/1 (present: LABEL = 1;
                   not:LABEL: LABEL = 0; No Finding: every label 0), for `--option label_cols=...`
    source_image   image_id of the translated input in the run's prepared cache
    source_patient its patient id (synthetic images inherit the patient: keep them on one side of a split)
    source_split   the split it came from (generate from ``train`` to augment training data)
    direction, seed, run, epoch

Which images: ``n`` drawn without replacement (numpy ``default_rng(seed)``) from the source
domain's rows of ``split``, as training selected them (``RUN/splits.csv``), then sorted.

Writes: an existing non-empty ``DIR`` is refused unless ``force``; even then a file is replaced only
when an earlier ``generate`` wrote it (listed in a manifest with this command's header), never a
file someone else put there.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from chestxai.rundir import GeneratedDir, safe_name
from chestxai.rundir.guard import check_output_dir

log = logging.getLogger(__name__)

FIXED_COLUMNS = ("path", "label")
INFO_COLUMNS = ("source_image", "source_patient", "source_split", "direction", "seed", "run", "epoch")


@dataclass(frozen=True)
class Generated:
    out: GeneratedDir
    n: int
    direction: str
    source_domain: str
    target_domain: str


def direction_domains(domains: dict[str, str], direction: str) -> tuple[str, str]:
    """(source key, target key) of ``direction``; a direction the run does not have is a ValueError."""
    if direction == "a2b":
        return "a", "b"
    if direction == "b2a":
        return "b", "a"
    raise ValueError(
        f"--direction {direction!r}: this run was trained for a2b ({domains['a']} -> {domains['b']}) and "
        f"b2a ({domains['b']} -> {domains['a']}) only"
    )


def target_label_values(text: str, label_names: list[str], task: str) -> dict[str, float]:
    """The label values a domain fixes, e.g. ``Pneumonia`` -> ``{"Pneumonia": 1}``.

    Multi-class domains fix every class (one-hot). Labels the domain says nothing about (other
    findings of a multi-label source) are left out: their value is unknown.
    """
    from chestxai.labels import is_normal_name
    from chestxai.synth.domains import parse_domain

    spec = parse_domain(text)
    names = list(label_names)
    label = spec.text if (spec.label is None and spec.text in names) else spec.label
    if label is None:  # No Finding
        if task == "multiclass":
            normal = [n for n in names if is_normal_name(n)]
            return {n: float(n in normal[:1]) for n in names}
        return {n: 0.0 for n in names}
    if task == "multiclass":
        if spec.present:
            return {n: float(n == label) for n in names}
        return {label: 0.0}
    return {label: 1.0 if spec.present else 0.0}


def manifest_label(domain: str, values: dict[str, float]) -> str:
    """The manifest's ``label`` text: ``domain``, or ``NAME``/``not:NAME`` when it fixes one label only
    (the csv reader loads that as the binary task ``NAME``; "No Finding" alone would be a class)."""
    from chestxai.synth.domains import ABSENT_PREFIX

    if len(values) == 1:
        ((name, value),) = values.items()
        return name if value == 1 else f"{ABSENT_PREFIX}{name}"
    return domain


def _manifest_header(label_columns: list[str]) -> list[str]:
    return [*FIXED_COLUMNS, *label_columns, *INFO_COLUMNS]


def _ours(manifest: Path) -> set[str] | None:
    """Image paths listed by a manifest this command wrote (its header), else None."""
    try:
        frame = pd.read_csv(manifest, dtype=str, keep_default_na=False)
    except (OSError, ValueError, pd.errors.ParserError):
        return None
    if list(frame.columns[:2]) != list(FIXED_COLUMNS) or not set(INFO_COLUMNS) <= set(frame.columns):
        return None
    return set(frame["path"])


def _check_targets(out: GeneratedDir, relpaths: list[str]) -> None:
    """With --force into a used folder: refuse to replace files an earlier generate did not write."""
    listed: set[str] = set()
    if out.manifest.exists():
        found = _ours(out.manifest)
        if found is None:
            raise FileExistsError(
                f"{out.manifest} exists and was not written by `chestxai synth generate`; choose another --out"
            )
        listed = found
    for rel in relpaths:
        if (out.root / rel).exists() and rel not in listed:
            raise FileExistsError(
                f"{out.root / rel} exists and is not listed in a manifest `chestxai synth generate` wrote; "
                f"choose another --out (files it did not write are never replaced, even with --force)"
            )
    others = [p.name for p in out.root.glob("*.csv") if p != out.manifest] if out.root.is_dir() else []
    if others:
        log.warning(
            "%s also holds %s: the csv reader then needs --option manifest=%s",
            out.root,
            others,
            out.manifest.name,
        )


def pick_rows(rows: np.ndarray, n: int, seed: int, what: str) -> np.ndarray:
    """``n`` of ``rows`` without replacement (seeded), sorted; more than there are is a ValueError."""
    if n < 1:
        raise ValueError(f"--n must be at least 1, got {n}")
    if n > len(rows):
        raise ValueError(
            f"--n {n} is more than the {len(rows)} images of {what}; use --n {len(rows)} or fewer"
        )
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(np.asarray(rows, np.int64), size=n, replace=False))


def generate(
    run: str | Path,
    direction: str,
    out: str | Path,
    n: int,
    *,
    split: str = "test",
    seed: int = 0,
    batch_size: int = 16,
    force: bool = False,
    device: str = "cpu",
    progress: bool = True,
) -> Generated:
    """Translate ``n`` images of the source domain of ``split`` and write ``out`` (module docstring)."""
    from PIL import Image

    from chestxai.atomic import atomic_path, write_text
    from chestxai.data.cache import PreparedCache
    from chestxai.synth.checkpoint import load_synth

    synth = load_synth(run, device=device)
    source, target = direction_domains(synth.domains, direction)
    rows_all = synth.rows(source, split)
    what = f"domain {source} ({synth.domains[source]}) in the {split} split of {run}"
    if len(rows_all) == 0:
        splits = sorted(set(synth.splits.loc[synth.splits["domain"] == source, "split"]))
        raise ValueError(f"{what}: no images; that domain has images in the splits {splits}; choose --split")
    rows = pick_rows(rows_all, n, seed, what)
    gen = GeneratedDir(Path(out))
    check_output_dir(gen.root, force)
    cache = PreparedCache(synth.cache_for(source))
    target_cache = PreparedCache(synth.cache_for(target))
    frame = cache.frame
    ids = [f"{direction}-{safe_name(frame['image_id'].iloc[r])}" for r in rows]
    if len(set(ids)) != len(ids):
        raise ValueError(
            f"two source images of {what} map to one file name; their ids differ only in odd characters"
        )
    rel = [gen.image(i).relative_to(gen.root).as_posix() for i in ids]
    _check_targets(gen, rel)
    values = target_label_values(synth.domains[target], target_cache.label_names, target_cache.task)
    label_columns = [c for c in values if c not in set(FIXED_COLUMNS) | set(INFO_COLUMNS)]
    label_text = manifest_label(synth.domains[target], values)

    gen.images.mkdir(parents=True, exist_ok=True)
    bar = tqdm(total=len(rows), desc=f"generate {direction}", disable=not progress, leave=False)
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        fakes = synth.translate(np.asarray(cache.images[chunk]), direction, batch_size=batch_size)
        for k, image in enumerate(fakes):
            with atomic_path(gen.root / rel[start + k]) as tmp:
                Image.fromarray(image).save(tmp, format="PNG")
        bar.update(len(chunk))
    bar.close()
    table = pd.DataFrame(
        {
            "path": rel,
            "label": label_text,
            **{c: [int(values[c])] * len(rows) for c in label_columns},
            "source_image": frame["image_id"].iloc[rows].astype(str).to_numpy(),
            "source_patient": frame["patient_id"].iloc[rows].astype(str).to_numpy(),
            "source_split": split,
            "direction": direction,
            "seed": int(seed),
            "run": str(Path(run)),
            "epoch": int(synth.epoch),
        }
    )[_manifest_header(label_columns)]
    write_text(gen.manifest, table.to_csv(index=False))
    log.info("wrote %d images and %s", len(rows), gen.manifest)
    return Generated(gen, len(rows), direction, synth.domains[source], synth.domains[target])
