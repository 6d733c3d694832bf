"""From synthesis settings to the two domains' images: the classifier's prepare path, then labels.

Caches are prepared (or reused) exactly as ``chestxai train`` does it
(:func:`chestxai.train.data_setup.setup_data`: same cache key, same user cache, same patient-
grouped splits with the same seed), so a CycleGAN and a classifier trained on one dataset agree
on which images are ``test``. Domains are then selected per split
(:func:`chestxai.synth.domains.select_rows`); training uses ``train``, the sample grids ``val``,
and ``generate``/``evaluate`` may use ``test``. Domain B may come from a second dataset
(``--source-b``), which must be prepared at the same size.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from chestxai.config import DataConfig
from chestxai.data.cache import PreparedCache
from chestxai.data.splits import SPLITS
from chestxai.synth.domains import domain_mask, parse_domain, select_rows
from chestxai.synth.networks import check_size
from chestxai.synth.settings import SynthSettings
from chestxai.train.data_setup import TrainingData, setup_data

log = logging.getLogger(__name__)
DEFAULT_SIZE = 256  # the paper's


@dataclass
class DomainData:
    caches: dict[str, PreparedCache]  # "a", "b" (the same object for one source)
    rows: dict[str, dict[str, np.ndarray]]  # domain -> split -> cache rows
    size: int

    def images(self, domain: str) -> np.ndarray:
        return self.caches[domain].images

    def splits_frame(self) -> pd.DataFrame:
        """image_id, row, split, domain of every selected row (``splits.csv``)."""
        parts = []
        for domain, by_split in self.rows.items():
            ids = self.caches[domain].frame["image_id"].to_numpy()
            for split, rows in by_split.items():
                parts.append(
                    pd.DataFrame({"image_id": ids[rows], "row": rows, "split": split, "domain": domain})
                )
        return pd.concat(parts, ignore_index=True)


def _data_config(s: SynthSettings, second: bool, size: int) -> DataConfig:
    return DataConfig(
        source=(s.source_b if second else s.source) or s.source,
        root=s.root_b if second else s.root,
        options=dict(s.options_b if second else s.options),
        size=size,
        cache=s.cache,
        cache_dir=s.cache_dir_b if second else s.cache_dir,
        val_fraction=s.val_fraction,
        test_fraction=s.test_fraction,
    )


def resolve_size(s: SynthSettings) -> int:
    """``--size``, or the given prepared cache's size, or 256 px; a given cache of another size is an error."""
    if s.cache_dir:
        cached = PreparedCache(s.cache_dir).size
        if s.size and cached != s.size:
            raise ValueError(
                f"--size {s.size} but the prepared cache {s.cache_dir} holds {cached} px images; "
                f"drop --size or prepare the dataset at {s.size} px"
            )
        return check_size(cached, f"the prepared cache {s.cache_dir}: size")
    return check_size(s.size or DEFAULT_SIZE)


def setup_domains(s: SynthSettings, progress: bool = True) -> tuple[DomainData, SynthSettings]:
    """Prepare/reuse the cache(s), select both domains in every split; returns the data and the
    settings with ``size`` and ``cache_dir``/``cache_dir_b`` filled in (what ``config.yaml`` records)."""
    size = resolve_size(s)
    data_a = setup_data(_data_config(s, False, size), s.seed, progress)
    data_b: TrainingData = data_a
    if s.has_second_source:
        if s.cache_dir_b:
            size_b = PreparedCache(s.cache_dir_b).size
            if size_b != size:
                raise ValueError(
                    f"domain A's images are {size} px ({data_a.cache.path}) but domain B's prepared cache "
                    f"{s.cache_dir_b} holds {size_b} px images; prepare both sources at one --size"
                )
        data_b = setup_data(_data_config(s, True, size), s.seed, progress)
        if data_b.cache.size != data_a.cache.size:  # e.g. a reader that ignores the size asked for
            raise ValueError(
                f"domain A's cache {data_a.cache.path} is {data_a.cache.size} px but domain B's "
                f"{data_b.cache.path} is {data_b.cache.size} px; prepare both sources at one --size"
            )
    sources = {"a": data_a, "b": data_b}
    specs = {"a": parse_domain(s.domain_a), "b": parse_domain(s.domain_b)}
    rows: dict[str, dict[str, np.ndarray]] = {}
    for domain, data in sources.items():
        spec, cache = specs[domain], data.cache
        rows[domain] = {"train": select_rows(cache, spec, data.splits["train"], "train")}
        mask = domain_mask(cache.labels, cache.label_names, cache.task, spec)
        for split in SPLITS[1:]:
            split_rows = data.splits[split]
            rows[domain][split] = np.sort(split_rows[mask[split_rows]])
            if not len(rows[domain][split]):
                log.warning("domain %r has no images in the %s split of %s", spec.text, split, cache.path)
    if not s.has_second_source:
        shared = np.intersect1d(rows["a"]["train"], rows["b"]["train"])
        if len(shared):
            raise ValueError(
                f"domains {s.domain_a!r} and {s.domain_b!r} share {len(shared)} training images of "
                f"{data_a.cache.path}; choose disjoint domains, e.g. LABEL and not:LABEL"
            )
    resolved = dataclasses.replace(
        s,
        size=size,
        cache_dir=str(data_a.cache.path.resolve()),
        cache_dir_b=str(data_b.cache.path.resolve()) if s.has_second_source else "",
    )
    caches = {"a": data_a.cache, "b": data_b.cache}
    return DomainData(caches, rows, size), resolved
