"""decode_image: formats, modes, DICOM LUTs, magic-byte detection, errors and the pixel limit."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from synth_images import gradient, write_dicom, write_png

from chestxai.data.decode import DecodeError, DecodeSettings, ImageTooLargeError, decode_image


def _minmax(a):
    a = a.astype(np.float64)
    return (a - a.min()) / (a.max() - a.min())


# --- Pillow formats and modes ------------------------------------------------------------------
def test_png_8bit_is_exact(tmp_path):
    arr = gradient()
    out = decode_image(write_png(tmp_path / "a.png", arr))
    assert out.dtype == np.float32 and out.shape == arr.shape
    np.testing.assert_array_equal(np.rint(out * 255).astype(np.uint8), arr)


def test_png_16bit_uses_full_precision_minmax(tmp_path):
    arr = (gradient(hi=4000, dtype=np.uint16) + 100).astype(np.uint16)  # 12-bit data in a 16-bit PNG
    path = write_png(tmp_path / "a16.png", arr)
    assert Image.open(path).mode.startswith("I")
    out = decode_image(path)
    np.testing.assert_allclose(out, _minmax(arr), atol=1e-6)
    assert out.min() == 0 and out.max() == 1


def test_jpeg_close_to_source(tmp_path):
    arr = gradient()
    Image.fromarray(arr).save(tmp_path / "a.jpg", quality=95)
    out = decode_image(tmp_path / "a.jpg")
    assert np.abs(out * 255 - arr).mean() < 3


def test_rgb_uses_luma(tmp_path):
    rgb = np.stack([gradient(), gradient()[:, ::-1], np.full((48, 64), 30, np.uint8)], axis=-1)
    path = write_png(tmp_path / "rgb.png", rgb)
    expected = np.asarray(Image.open(path).convert("L"), np.float32) / 255
    np.testing.assert_allclose(decode_image(path), expected, atol=1e-6)


def test_rgba_and_la_are_composited_on_black(tmp_path):
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., :3] = 200
    rgba[0, :, 3] = 0  # transparent row -> black
    rgba[1, :, 3] = 255  # opaque -> gray 200
    rgba[2:, :, 3] = 128
    out = decode_image(write_png(tmp_path / "rgba.png", rgba))
    np.testing.assert_allclose(out[0], 0)
    np.testing.assert_allclose(out[1], 200 / 255, atol=1e-3)
    np.testing.assert_allclose(out[2], 200 / 255 * 128 / 255, atol=1e-3)
    la = Image.fromarray(rgba).convert("LA")
    la.save(tmp_path / "la.png")
    np.testing.assert_allclose(decode_image(tmp_path / "la.png"), out, atol=2e-3)


def test_palette_image(tmp_path):
    arr = gradient()
    Image.fromarray(arr).convert("P").save(tmp_path / "p.png")
    expected = np.asarray(Image.open(tmp_path / "p.png").convert("L"), np.float32) / 255
    np.testing.assert_allclose(decode_image(tmp_path / "p.png"), expected, atol=1e-6)


def test_format_detected_by_magic_bytes_not_extension(tmp_path):
    arr = gradient()
    png_named_jpg = write_png(tmp_path / "really_png.jpg", arr)
    dicom_named_png = write_dicom(tmp_path / "really_dicom.png", arr)
    np.testing.assert_allclose(decode_image(png_named_jpg), arr / 255, atol=1e-6)
    np.testing.assert_allclose(decode_image(dicom_named_png), arr / 255, atol=1e-6)


# --- errors ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name, content, reason",
    [
        ("empty.png", b"", "empty file"),
        ("notes.png", b"this is a text file, not an image\n" * 10, "not an image"),
        ("notes.dcm", b"this is a text file, not a DICOM\n" * 10, "not an image"),
    ],
)
def test_bad_files_raise_decode_error_naming_the_file(tmp_path, name, content, reason):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DecodeError, match=reason) as err:
        decode_image(path)
    assert str(path) in str(err.value) and err.value.path == str(path)


def test_truncated_png_raises_decode_error(tmp_path):
    path = write_png(
        tmp_path / "full.png", np.random.default_rng(0).integers(0, 255, (200, 200), dtype=np.uint8)
    )
    data = path.read_bytes()
    (tmp_path / "cut.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(DecodeError, match="truncated"):
        decode_image(tmp_path / "cut.png")


def test_dicom_without_pixel_data(tmp_path):
    path = write_dicom(tmp_path / "header.dcm", gradient(), pixels=False)
    with pytest.raises(DecodeError, match="without pixel data"):
        decode_image(path)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        decode_image(tmp_path / "nope.png")


def test_pixel_limit_guards_pillow_and_dicom_before_decoding(tmp_path):
    arr = gradient(100, 100)
    small = DecodeSettings(max_pixels=5_000)
    with pytest.raises(ImageTooLargeError, match="max_pixels=5000"):
        decode_image(write_png(tmp_path / "big.png", arr), small)
    with pytest.raises(ImageTooLargeError, match="max_pixels"):
        decode_image(write_dicom(tmp_path / "big.dcm", arr), small)
    assert issubclass(ImageTooLargeError, DecodeError)
    assert decode_image(tmp_path / "big.png", DecodeSettings(max_pixels=10_000)).shape == (100, 100)


# --- DICOM (synthetic files built here with pydicom) -------------------------------------------
def test_dicom_16bit_minmax_and_monochrome1_inversion(tmp_path):
    arr = (gradient(hi=3000, dtype=np.uint16) + 50).astype(np.uint16)
    m2 = decode_image(write_dicom(tmp_path / "m2.dcm", arr, bits_stored=12))
    m1 = decode_image(write_dicom(tmp_path / "m1.dcm", arr, photometric="MONOCHROME1", bits_stored=12))
    np.testing.assert_allclose(m2, _minmax(arr), atol=1e-6)
    np.testing.assert_allclose(m1, 1 - m2, atol=1e-6)


def test_dicom_rescale_slope_intercept_applied(tmp_path):
    arr = (gradient(hi=2000, dtype=np.uint16)).astype(np.uint16)
    # a negative slope reverses intensities: only a decoder that applies the modality LUT sees it
    out = decode_image(
        write_dicom(tmp_path / "r.dcm", arr, bits_stored=12, RescaleSlope=-2, RescaleIntercept=100)
    )
    np.testing.assert_allclose(out, 1 - _minmax(arr), atol=1e-6)


def test_dicom_window_is_applied(tmp_path):
    arr = (gradient(hi=4000, dtype=np.uint16)).astype(np.uint16)
    center, width = 1000.0, 801.0
    out = decode_image(
        write_dicom(tmp_path / "w.dcm", arr, bits_stored=12, WindowCenter=center, WindowWidth=width)
    )
    # DICOM LINEAR window (PS3.3 C.11.2.1.2.1), output scaled to [0, 1]
    expected = np.clip((arr - (center - 0.5)) / (width - 1) + 0.5, 0, 1)
    np.testing.assert_allclose(out, expected, atol=1e-3)
    raw = decode_image(tmp_path / "w.dcm", DecodeSettings(voi=False))
    np.testing.assert_allclose(raw, _minmax(arr), atol=1e-6)


def test_dicom_8bit_is_exact_and_compressed_syntax_decodes(tmp_path):
    arr = gradient()
    plain = decode_image(write_dicom(tmp_path / "p.dcm", arr))
    rle = decode_image(write_dicom(tmp_path / "rle.dcm", arr, compress="1.2.840.10008.1.2.5"))  # RLE Lossless
    np.testing.assert_allclose(plain, arr / 255, atol=1e-6)
    np.testing.assert_array_equal(rle, plain)


# --- real data ---------------------------------------------------------------------------------
@pytest.mark.realdata
def test_real_monochrome1_twin_is_inverse(shared_data):
    folder = shared_data / "dicom"
    m1 = decode_image(folder / "siim-negative-retagged-MONOCHROME1.dcm")  # JPEG baseline via pylibjpeg
    (m2_path,) = [p for p in folder.glob("*.dcm") if "MONOCHROME1" not in p.name]
    m2 = decode_image(m2_path)
    assert m1.shape == m2.shape == (1024, 1024)
    assert m2.std() > 0.1
    np.testing.assert_allclose(m1, 1 - m2, atol=1e-6)


@pytest.mark.realdata
def test_derived_16bit_dicom_from_real_png(shared_data, tmp_path):
    """A *derived* DICOM: a real NIH PNG scaled to 12 bits and re-encoded here with pydicom."""
    png = shared_data / "samples" / "00000001_000.png"
    base = np.asarray(Image.open(png).convert("L"), np.uint16)
    arr = (base * 16 + 7).astype(np.uint16)  # 12-bit range
    out = decode_image(write_dicom(tmp_path / "derived.dcm", arr, bits_stored=12))
    np.testing.assert_allclose(out, _minmax(base), atol=1e-6)


def test_max_pixels_above_pillows_hard_limit_is_refused_up_front(monkeypatch):
    """Issue 9 (weaker): --max-pixels above Pillow's own limit was accepted, then broken per image."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)  # Pillow's hard limit is then 2,000 pixels
    with pytest.raises(ValueError, match="above Pillow's own hard limit of 2000.*at most --max-pixels 2000"):
        DecodeSettings(max_pixels=5_000)
    assert DecodeSettings(max_pixels=2_000).max_pixels == 2_000
    for bad in (0, -5, 2.5, True):
        with pytest.raises(ValueError, match="positive whole number"):
            DecodeSettings(max_pixels=bad)


def test_an_image_over_pillows_limit_does_not_ask_to_raise_max_pixels(tmp_path, monkeypatch):
    """The old message said "raise max_pixels" where raising it could not help."""
    from PIL import Image

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 1_000)
    path = write_png(tmp_path / "big.png", gradient(100, 100))  # 10,000 pixels > 2,000: Pillow refuses
    with pytest.raises(ImageTooLargeError, match="exceeds max_pixels=2000") as err:
        decode_image(path, DecodeSettings(max_pixels=2_000))
    assert "raise" not in str(err.value)


def test_cli_max_pixels_above_the_limit_is_one_line(tmp_path, capsys):
    from chestxai.cli import main

    (tmp_path / "a").mkdir()
    write_png(tmp_path / "a" / "x.png", gradient())
    argv = ["prepare", "--source", "folder", "--root", str(tmp_path), "--out", str(tmp_path / "c")]
    assert main([*argv, "--max-pixels", str(10**12), "--quiet"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Pillow's own hard limit" in err
    assert not (tmp_path / "c").exists()
