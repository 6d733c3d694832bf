"""File names of a synthesis run and of a folder of generated images (``chestxai synth``).

``runs/<name>/`` of ``chestxai synth train`` holds::

    config.yaml            the resolved synthesis config (source, domains, size, networks, losses)
    checkpoint.pt          the latest generators (both directions) + what rebuilds them
    last.pt                generators, discriminators, optimisers, schedulers, pools (resume)
    history.csv            one row per epoch: the four losses (G adversarial, cycle, identity, D)
    splits.csv             image_id, row, split, domain (a/b): the images each domain selected
    samples/epoch-NNN.png  a grid of input / translated / reconstructed per epoch
    synth_metrics.json     ``chestxai synth evaluate``: two-sample test, FID/KID, consistency, SSIM
    gallery/               input / translated / reconstructed / difference triplets (the report's)
    report.html

``chestxai synth generate RUN --out DIR`` writes ``DIR/manifest.csv`` and one PNG per image,
a folder the ``csv`` reader loads as it is.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from chestxai.rundir.layout import RunDir, safe_name


@dataclass(frozen=True)
class SynthRunDir:
    """``runs/<name>/`` of a CycleGAN run; shares the classifier run's names where they mean the same."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def _run(self) -> RunDir:
        return RunDir(self.root)

    @property
    def config(self) -> Path:
        return self._run.config

    @property
    def checkpoint(self) -> Path:
        return self._run.checkpoint

    @property
    def last(self) -> Path:
        return self._run.last

    @property
    def history(self) -> Path:
        return self._run.history

    @property
    def splits(self) -> Path:
        """``splits.csv``: image_id, row, split, domain (a/b) of every image the run selected."""
        return self._run.splits

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    def sample_grid(self, epoch: int) -> Path:
        return self.samples / f"epoch-{int(epoch):03d}.png"

    @property
    def metrics(self) -> Path:
        return self._run.synth_metrics

    @property
    def gallery(self) -> Path:
        return self.root / "gallery"

    def gallery_image(self, index: int, kind: str) -> Path:
        """``gallery/NNN-<kind>.png`` (kind: input, translated, reconstructed, difference)."""
        return self.gallery / f"{int(index):03d}-{safe_name(kind)}.png"

    @property
    def report(self) -> Path:
        return self._run.report

    def require(self) -> Path:
        if not self.checkpoint.is_file():
            raise FileNotFoundError(
                f"{self.root} has no checkpoint.pt: is it a synthesis run? Train one with `chestxai synth train ...`"
            )
        return self.checkpoint


@dataclass(frozen=True)
class GeneratedDir:
    """``chestxai synth generate --out DIR``: ``manifest.csv`` (path, source image, direction, seed,
    target label) and ``images/<id>.png``; the ``csv`` reader loads the folder without options."""

    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.csv"

    @property
    def images(self) -> Path:
        return self.root / "images"

    def image(self, image_id: str) -> Path:
        return self.images / f"{safe_name(image_id)}.png"
