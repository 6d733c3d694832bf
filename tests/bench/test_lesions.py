"""The lesion builder: its mask is exactly where the opacity was drawn, inside the lung field."""

from __future__ import annotations

import numpy as np
import pytest

from chestxai.bench.lesions import DIFFICULTY, LesionSettings, draw_lesion, jitter, lesion_profile, lung_field


@pytest.mark.parametrize("seed", range(5))
def test_mask_matches_the_drawn_pixels(seed):
    """On a flat background without texture, the change at a pixel is contrast * profile * (1 - bg):
    the mask (profile >= 0.5) is exactly the pixels that changed by at least half the peak change,
    and no pixel outside the lesion's support changed at all."""
    rng = np.random.default_rng(seed)
    bg = np.full((96, 96), 0.3, np.float32)
    settings = LesionSettings(texture=0.0)
    out, mask, les = draw_lesion(bg, rng, settings)
    diff = out.astype(np.float64) - bg
    peak = les.contrast * (1 - 0.3)
    assert mask.dtype == np.uint8 and set(np.unique(mask)) <= {0, 1}
    assert np.array_equal(mask.astype(bool), diff >= 0.5 * peak - 1e-5)
    assert diff.max() == pytest.approx(peak, rel=0.02)
    assert (diff >= 0).all()  # an opacity only brightens
    # outside the support (beyond radius * (1 + edge / 2)) nothing changed
    r, c = np.mgrid[0:96, 0:96] + 0.5
    far = np.hypot(r - les.row, c - les.col) > les.radius * (1 + settings.edge / 2) + 1
    assert np.all(diff[far] == 0)
    assert np.array_equal(bg, np.full((96, 96), 0.3, np.float32))  # input untouched


def test_textured_lesion_mask_is_the_profiles_half_maximum():
    rng = np.random.default_rng(3)
    bg = np.random.default_rng(0).uniform(0.1, 0.6, (128, 128)).astype(np.float32)
    out, mask, les = draw_lesion(bg, rng, LesionSettings())
    changed = np.abs(out - bg) > 1e-6
    assert mask.any() and changed[mask.astype(bool)].all()  # every mask pixel was drawn on
    assert changed.sum() >= mask.sum()  # the soft edge reaches a little beyond the mask
    assert LesionSettings().radius[0] * 128 <= les.radius <= LesionSettings().radius[1] * 128


def test_lesions_are_placed_inside_the_lung_field_and_vary():
    rng = np.random.default_rng(0)
    field = lung_field(128)
    bg = np.full((128, 128), 0.4, np.float32)
    draws = [draw_lesion(bg, rng, field=field)[2] for _ in range(40)]
    for les in draws:
        assert field[int(les.row), int(les.col)]
    assert len({round(d.radius, 3) for d in draws}) > 30 and len({int(d.col > 64) for d in draws}) == 2


def test_lung_field_is_two_lungs_with_a_mediastinum():
    f = lung_field(128)
    assert f[60, 40] and f[60, 88] and not f[60, 64]  # both lungs, not the midline
    assert not f[:4].any() and not f[:, :4].any()  # never the border


def test_profile_is_half_on_the_ellipse():
    p = lesion_profile(64, (31.5, 31.5), 10.0, 1.0, 0.0, 0.5)
    assert p[31, 31] == pytest.approx(1.0) and p[0, 0] == 0.0
    assert p[31, 41] == pytest.approx(0.5)  # that pixel centre lies on the ellipse (distance 10)


def test_bad_settings_are_refused():
    with pytest.raises(ValueError, match="radius"):
        LesionSettings(radius=(0.2, 0.1))
    with pytest.raises(ValueError, match="contrast"):
        LesionSettings(contrast=(0.5, 1.5))
    with pytest.raises(ValueError, match="texture"):
        LesionSettings(texture=2)
    assert DIFFICULTY["hard"].contrast[1] < DIFFICULTY["easy"].contrast[0]


def test_jitter_changes_intensities_but_keeps_range():
    img = np.linspace(0, 1, 64 * 64, dtype=np.float32).reshape(64, 64)
    out = jitter(img, np.random.default_rng(1))
    assert out.min() >= 0 and out.max() <= 1 and not np.allclose(out, img)
    assert np.array_equal(jitter(img, np.random.default_rng(1), 0), img)
