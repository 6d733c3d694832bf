"""The published anchors and the ChestX-ray8 Table 4 layout, on a hand-made localisation block."""

from __future__ import annotations

from chestxai.scorecard import anchors


def _ci(v, lo, hi):
    return {"value": v, "ci_low": lo, "ci_high": hi}


def test_anchor_figures_as_published():
    table4 = anchors.CHESTXRAY8.values
    assert list(table4) == list(anchors.IOBB_THRESHOLDS)
    assert table4["0.1"]["Cardiomegaly"] == 0.9931 and table4["0.9"]["Nodule"] == 0.0126
    assert table4["0.25"]["Effusion"] == 0.5424 and table4["0.5"]["Pneumothorax"] == 0.1836
    for row in table4.values():  # accuracy falls as the threshold rises, per finding
        assert set(row) == set(anchors.CHESTXRAY8_FINDINGS)
    for f in anchors.CHESTXRAY8_FINDINGS:
        col = [table4[t][f] for t in anchors.IOBB_THRESHOLDS]
        assert col == sorted(col, reverse=True)
    assert anchors.PYLON.values == {"pylon": 0.62, "cam": 0.45}
    gradcam = anchors.CHEXLOCALIZE_GRADCAM_VAL.values
    assert gradcam["Lung Lesion"] == 0.0 and min(v for v in gradcam.values() if v) == 0.125
    assert max(gradcam.values()) == 0.233
    assert anchors.ARUN.values["siim_pneumothorax_segmentation"]["unet_auprc"] == 0.404
    for a in anchors.ANCHORS:
        assert a.citation and a.protocol


def test_chestxray8_table_layout_and_values():
    block = {
        "Pleural Effusion": {  # CheXpert spelling: meets Table 4's "Effusion"
            "n_positive": 12,
            "hit_rate": _ci(0.75, 0.5, 0.9),
            "iobb_accuracy": {
                "0.1": _ci(0.5, 0.25, 0.75),
                "0.25": _ci(0.25, 0.0, 0.5),
                "0.5": _ci(None, None, None),
            },
        },
        "Lesion": {"n_positive": 3, "iobb_accuracy": {"0.1": _ci(1.0, 1.0, 1.0)}},
    }
    text = anchors.chestxray8_table(block)
    lines = text.splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header == ["T(IoBB)", "", *anchors.CHESTXRAY8_FINDINGS, "Lesion"]
    cells = {
        line.split("|")[1].strip() + "/" + line.split("|")[2].strip(): [
            c.strip() for c in line.strip("|").split("|")[2:]
        ]
        for line in lines[2:]
        if line.startswith("|")
    }
    effusion = anchors.CHESTXRAY8_FINDINGS.index("Effusion")  # cells start after the row label
    lesion = len(anchors.CHESTXRAY8_FINDINGS)
    assert (
        cells["n (ours)/"][effusion] == "12"
        and cells["n (ours)/"][lesion] == "3"
        and cells["n (ours)/"][0] == "-"
    )
    assert cells["0.1/chestxai"][effusion] == "0.50 [0.25, 0.75]"
    assert cells["0.1/chestxai"][lesion] == "1.00 [1.00, 1.00]"
    assert cells["0.25/chestxai"][effusion] == "0.25 [0.00, 0.50]"
    assert cells["0.5/chestxai"][effusion] == "n/a" and cells["0.75/chestxai"][effusion] == "n/a"
    assert cells["0.1/chestxai"][0] == "-"  # Atelectasis: not in our block
    assert cells["0.1/ChestX-ray8 *"][effusion] == "0.71" and cells["0.9/ChestX-ray8 *"][1] == "0.68"
    assert cells["0.1/ChestX-ray8 *"][lesion] == "-"
    assert cells["point/chestxai hit rate"][effusion] == "0.75 [0.50, 0.90]"
    assert "PYLON 0.62 vs CAM 0.45" in text and "not a like-for-like comparison" in text
