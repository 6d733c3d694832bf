"""Benchmarks with known ground truth: semi-synthetic lesions on real X-rays, and shortcut cues.

``chestxai bench lesions`` (:mod:`chestxai.bench.run`) builds the task (:mod:`.lesions`,
:mod:`.shortcut`, :mod:`.task`), trains on it with the ordinary training loop, and measures every
explanation method at several target layers against the lesion masks (:mod:`.measure`).
"""
