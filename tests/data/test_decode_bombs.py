"""Issue 20, items 16-17: decompression bombs are refused from the header, before pixel memory.

* a Deflated Explicit VR Little Endian DICOM was inflated whole by pydicom before any size check
  (2 MB -> 4 GB); now the header is read first and the data inflated with a cap;
* the 80-megapixel guard let a 308 KB 8900 x 8900 RGBA PNG cost ~3 GB (float32 x 4 bands); now the
  decoded samples' bytes are budgeted (``max_bytes``, ``--max-decode-mb``) and conversions run in
  uint8 or strips, so the float32 image is the only full-size float allocation.

Allocation is measured with ``tracemalloc`` (numpy and Python buffers report to it; Pillow's own
buffers do not, which is why the Pillow cases check that the refusal comes from the header).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
from PIL import Image
from synth_images import gradient, write_dicom, write_png

from chestxai.data.decode import (
    DecodeError,
    DecodeSettings,
    ImageTooLargeError,
    decode_image,
)
from chestxai.testing import deflated_dicom_bomb, png_bomb_file

MiB = 1024 * 1024


def peak_mib(fn, *args):
    """(result or exception, peak MiB traced while running ``fn(*args)``)."""
    tracemalloc.start()
    try:
        try:
            out = fn(*args)
        except Exception as exc:  # the refusal is the result under test
            out = exc
        return out, tracemalloc.get_traced_memory()[1] / MiB
    finally:
        tracemalloc.stop()


# --- item 16: deflated DICOM ---------------------------------------------------------------------
def test_a_deflated_dicom_holding_more_than_its_header_says_is_stopped_at_the_cap(tmp_path):
    """96 MiB of zeros behind a 64 x 64 header (a 98 KB file): refused after ~1 MiB inflated."""
    bomb = deflated_dicom_bomb(tmp_path / "bomb.dcm", rows=64, cols=64, pixel_mib=96)
    assert bomb.stat().st_size < 200_000
    err, peak = peak_mib(decode_image, bomb)
    assert isinstance(err, ImageTooLargeError), err
    assert "holds more than its header declares" in err.reason and str(bomb) in str(err)
    assert peak < 24, f"{peak:.1f} MiB traced: the data was inflated past the cap"


def test_a_deflated_dicom_over_the_byte_budget_is_refused_from_its_header(tmp_path):
    """An honest 4096 x 4096 16-bit header (32 MiB of samples) over a 1 MiB budget: refused
    before the pixel data is inflated (it was inflated whole, then decoded, before)."""
    bomb = deflated_dicom_bomb(tmp_path / "big.dcm", rows=4096, cols=4096, bits=16)
    err, peak = peak_mib(decode_image, bomb, DecodeSettings(max_bytes=MiB))
    assert isinstance(err, ImageTooLargeError), err
    assert "4096x4096x1 frames" in err.reason and "--max-decode-mb" in err.reason
    assert peak < 12, f"{peak:.1f} MiB traced for a refusal that needs only the header"


def test_a_deflated_dicom_decodes_like_its_uncompressed_twin(tmp_path):
    import pydicom
    from pydicom.uid import DeflatedExplicitVRLittleEndian

    arr = (gradient(hi=4000, dtype=np.uint16) + 7).astype(np.uint16)
    plain = write_dicom(tmp_path / "plain.dcm", arr, WindowCenter=2000, WindowWidth=3000)
    ds = pydicom.dcmread(plain)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(tmp_path / "deflated.dcm", enforce_file_format=True)
    assert (
        pydicom.dcmread(tmp_path / "deflated.dcm").file_meta.TransferSyntaxUID
        == DeflatedExplicitVRLittleEndian
    )
    np.testing.assert_array_equal(decode_image(tmp_path / "deflated.dcm"), decode_image(plain))


def test_a_truncated_deflated_dicom_is_a_decode_error(tmp_path):
    good = deflated_dicom_bomb(tmp_path / "ok.dcm", rows=300, cols=300, bits=16)
    data = good.read_bytes()
    (tmp_path / "cut.dcm").write_bytes(data[: len(data) - 40])
    with pytest.raises(DecodeError, match="cut.dcm"):
        decode_image(tmp_path / "cut.dcm")
    assert decode_image(good).shape == (300, 300)


def test_a_dicom_over_the_byte_budget_is_refused_before_its_pixels_are_read(tmp_path):
    path = write_dicom(tmp_path / "a.dcm", gradient(hi=4000, dtype=np.uint16))  # 48 x 64 x 2 bytes
    with pytest.raises(ImageTooLargeError, match=r"48x64x1 frames x 1 samples x 16 bits.*--max-decode-mb"):
        decode_image(path, DecodeSettings(max_bytes=6000))
    assert decode_image(path, DecodeSettings(max_bytes=6144)).shape == (48, 64)


# --- item 17: bytes, not pixels ------------------------------------------------------------------
def test_an_rgba_png_under_the_pixel_limit_is_refused_by_its_bytes(tmp_path):
    """The issue's file: 8900 x 8900 RGBA, 79 MP (< 80 MP) but 302 MiB of samples. Only its header
    is written (113 bytes): the refusal must come from the header, not from decoding."""
    bomb = png_bomb_file(tmp_path / "rgba.png", 8900, 8900, "RGBA", complete=False)
    assert DecodeSettings().max_pixels > 8900 * 8900  # under the pixel guard, which let it through
    with pytest.raises(ImageTooLargeError, match=r"8900x8900 RGBA.*302 MiB.*--max-decode-mb"):
        decode_image(bomb)


def test_the_byte_budget_counts_bands(tmp_path):
    rgba = write_png(tmp_path / "rgba.png", np.zeros((100, 100, 4), np.uint8))
    gray = write_png(tmp_path / "gray.png", np.zeros((100, 100), np.uint8))
    small = DecodeSettings(max_bytes=20_000)
    with pytest.raises(ImageTooLargeError, match="4 bytes per pixel"):
        decode_image(rgba, small)
    assert decode_image(gray, small).shape == (100, 100)


def test_an_rgba_image_costs_one_float_image_not_four(tmp_path):
    """1000 x 1000 RGBA: the float32 result is 3.8 MiB; before, float32 x 4 bands and its
    temporaries peaked near 40 MiB."""
    rng = np.random.default_rng(0)
    path = write_png(tmp_path / "rgba.png", rng.integers(0, 255, (1000, 1000, 4), dtype=np.uint8))
    out, peak = peak_mib(decode_image, path)
    assert out.shape == (1000, 1000) and out.dtype == np.float32
    assert peak < 2 * out.nbytes / MiB, f"{peak:.1f} MiB traced for a {out.nbytes / MiB:.1f} MiB result"


def test_a_windowed_16bit_dicom_costs_little_more_than_its_float_image(tmp_path):
    rng = np.random.default_rng(1)
    arr = rng.integers(0, 4000, (1000, 1000), dtype=np.uint16)
    path = write_dicom(tmp_path / "w.dcm", arr, WindowCenter=2000, WindowWidth=3000, RescaleSlope=2)
    out, peak = peak_mib(decode_image, path)
    assert out.shape == (1000, 1000)
    # float32 result 3.8 MiB + the file's 1.9 MiB of pixel bytes + pydicom's 1.9 MiB array
    assert peak < 3 * out.nbytes / MiB, f"{peak:.1f} MiB traced (float64 copies of the whole image?)"


# --- the strips give the same numbers as whole-array arithmetic -----------------------------------
def test_rgba_in_strips_equals_the_whole_array_formula(tmp_path):
    rng = np.random.default_rng(2)
    rgba = rng.integers(0, 255, (700, 300, 4), dtype=np.uint8)
    out = decode_image(write_png(tmp_path / "rgba.png", rgba))
    f = rgba.astype(np.float32) / 255.0
    whole = np.clip((f[..., :3] @ np.array([0.299, 0.587, 0.114], np.float32)) * f[..., 3], 0, 1)
    np.testing.assert_array_equal(out, whole.astype(np.float32))


def test_16bit_minmax_in_strips_equals_the_whole_array_formula(tmp_path):
    arr = np.random.default_rng(3).integers(100, 4000, (700, 300), dtype=np.uint16)
    out = decode_image(write_png(tmp_path / "a16.png", arr))
    a = np.asarray(Image.open(tmp_path / "a16.png")).astype(np.float64)
    np.testing.assert_array_equal(out, ((a - a.min()) / (a.max() - a.min())).astype(np.float32))


@pytest.mark.parametrize("photometric", ["MONOCHROME2", "MONOCHROME1"])
def test_dicom_lut_in_strips_equals_the_whole_array_formula(tmp_path, photometric):
    from pydicom.pixels import apply_modality_lut, apply_voi_lut

    arr = np.random.default_rng(4).integers(0, 4000, (700, 300), dtype=np.uint16)
    path = write_dicom(
        tmp_path / "w.dcm", arr, photometric, WindowCenter=1500, WindowWidth=2500, RescaleSlope=2
    )
    out = decode_image(path)
    import pydicom

    ds = pydicom.dcmread(path)
    data = apply_modality_lut(ds.pixel_array, ds)
    lo, hi = (float(v) for v in apply_voi_lut(np.array([-1e12, 1e12]), ds))
    whole = np.clip((apply_voi_lut(data, ds).astype(np.float64) - lo) / (hi - lo), 0, 1).astype(np.float32)
    if photometric == "MONOCHROME1":
        whole = 1.0 - whole
    np.testing.assert_array_equal(out, np.clip(whole, 0, 1).astype(np.float32))
    plain = write_dicom(tmp_path / "p.dcm", arr, photometric, RescaleSlope=2)
    whole = apply_modality_lut(pydicom.dcmread(plain).pixel_array, pydicom.dcmread(plain)).astype(np.float64)
    whole = ((whole - whole.min()) / (whole.max() - whole.min())).astype(np.float32)
    if photometric == "MONOCHROME1":
        whole = 1.0 - whole
    np.testing.assert_array_equal(decode_image(plain), np.clip(whole, 0, 1).astype(np.float32))


def test_the_byte_budget_keeps_existing_cache_keys_and_is_validated():
    assert DecodeSettings().as_dict() == {"max_pixels": 80_000_000, "voi": True}
    assert DecodeSettings(max_bytes=MiB).as_dict()["max_bytes"] == MiB
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="--max-decode-mb"):
            DecodeSettings(max_bytes=bad)


def test_prepare_lists_bombs_as_skipped_and_finishes(tmp_path):
    import json

    from chestxai.data.cache import PreparedCache
    from chestxai.data.prepare import prepare

    root = tmp_path / "in"
    root.mkdir()
    for i in range(3):
        write_png(root / f"good{i}.png", gradient())
    deflated_dicom_bomb(root / "bomb.dcm", pixel_mib=96)
    png_bomb_file(root / "rgba.png", 8900, 8900, "RGBA", complete=False)
    path = prepare("folder", root, size=16, out=tmp_path / "out", workers=1, progress=False)
    assert len(PreparedCache(path)) == 3
    report = json.loads((path / "prepare_report.json").read_text())
    reasons = {s["path"].rsplit("/", 1)[-1]: s["reason"] for s in report["skipped"]}
    assert set(reasons) == {"bomb.dcm", "rgba.png"}
    assert "holds more than its header declares" in reasons["bomb.dcm"]
    assert "--max-decode-mb" in reasons["rgba.png"]
