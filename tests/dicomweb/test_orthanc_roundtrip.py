"""The issue's acceptance round trip: a real DICOM stored in a real Orthanc, ``chestxai dicomweb
--store`` run against it, and the SR and Parametric Map read back through QIDO / WADO - in the source's
study, referencing its SOP instance, the findings coded, the probabilities those of the CSV."""

from __future__ import annotations

import csv

import numpy as np
import pandas as pd
import pydicom
import pytest
from dicomweb_fakes import derive
from pydicom.uid import generate_uid

from chestxai.cli import main
from chestxai.dicomweb.connection import Server, ServerSettings
from chestxai.dicomweb.query import SERIES_UID, SOP_UID, InstanceRef, value
from chestxai.dicomweb.transfer import store

pytestmark = pytest.mark.realdata

COMPREHENSIVE_3D_SR = "1.2.840.10008.5.1.4.1.1.88.34"
PARAMETRIC_MAP = "1.2.840.10008.5.1.4.1.1.30"
MEASUREMENT_GROUP, FINDING, PROBABILITY = "125007", "121071", "122157"


def _referenced(ds: pydicom.Dataset) -> set[str]:
    """Every ReferencedSOPInstanceUID anywhere in ``ds``."""
    found = set()
    for elem in ds.iterall():
        if elem.keyword == "ReferencedSOPInstanceUID":
            found.add(str(elem.value))
    return found


def _findings(sr: pydicom.Dataset) -> dict[tuple[str, str], float]:
    """{(coding scheme, code) of each TID 1501 group's finding: its probability (DCM 122157)}."""
    out = {}

    def walk(items):
        for item in items:
            name = item.ConceptNameCodeSequence[0].CodeValue if "ConceptNameCodeSequence" in item else ""
            if item.ValueType == "CONTAINER" and name == MEASUREMENT_GROUP:
                children = item.ContentSequence
                finding = next(
                    c.ConceptCodeSequence[0]
                    for c in children
                    if c.ConceptNameCodeSequence[0].CodeValue == FINDING
                )
                prob = [
                    float(c.MeasuredValueSequence[0].NumericValue)
                    for c in children
                    if c.ValueType == "NUM" and c.ConceptNameCodeSequence[0].CodeValue == PROBABILITY
                ]
                if prob:  # the region groups of the heatmap boxes carry no probability
                    out[finding.CodingSchemeDesignator, finding.CodeValue] = prob[0]
            elif "ContentSequence" in item:
                walk(item.ContentSequence)

    walk(sr.ContentSequence)
    return out


def test_dicomweb_store_round_trip_through_orthanc(orthanc, real_dicom, tiny_run, tmp_path, capsys):
    from chestxai.dicomout.codes import codes_for

    server = Server(ServerSettings(orthanc.dicomweb, retries=0))
    source = derive(real_dicom, tmp_path / "source.dcm", study=generate_uid())  # a study of its own
    src = pydicom.dcmread(source)
    assert store(server, source).stored
    out = tmp_path / "out"
    argv = [
        "dicomweb",
        str(tiny_run),
        "--url",
        orthanc.dicomweb,
        "--study",
        src.StudyInstanceUID,
        "--device",
        "auto",  # the command's run with auto that tests/test_device_auto.py points to
    ]
    assert main([*argv, "--store", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert "store" in printed and "failed" in printed  # the summary table

    with open(out / "dicomweb.csv", newline="") as f:
        ledger = list(csv.DictReader(f))
    stored = {r["object"]: r for r in ledger if r["step"] == "store"}
    assert sorted(stored) == ["pmap", "sr"] and {r["status"] for r in stored.values()} == {"done"}
    predictions = pd.read_csv(out / "predictions.csv")
    wado = f"{orthanc.dicomweb}/studies/{src.StudyInstanceUID}/series/{src.SeriesInstanceUID}/instances/{src.SOPInstanceUID}"
    assert list(predictions["path"]) == [wado]

    # read back what the server holds now: QIDO lists the new series in the source's study, WADO gives them
    client = server.client
    series = {
        value(s, SERIES_UID): value(s, "00080060") for s in client.search_for_series(src.StudyInstanceUID)
    }
    assert len(series) == 3 and series[src.SeriesInstanceUID] == "CR"
    held = {}
    for uid in series:
        for inst in client.search_for_instances(src.StudyInstanceUID, uid):
            ref = InstanceRef(src.StudyInstanceUID, uid, value(inst, SOP_UID))
            held[ref.sop] = client.retrieve_instance(ref.study, ref.series, ref.sop)
    sr, pm = held[stored["sr"]["uid"]], held[stored["pmap"]["uid"]]
    assert sr.SOPClassUID == COMPREHENSIVE_3D_SR and pm.SOPClassUID == PARAMETRIC_MAP
    for obj in (sr, pm):
        assert obj.StudyInstanceUID == src.StudyInstanceUID and obj.PatientID == src.PatientID
        assert obj.SeriesInstanceUID not in (src.SeriesInstanceUID,)  # new series, source's study
        assert src.SOPInstanceUID in _referenced(obj)
    evidence = sr.CurrentRequestedProcedureEvidenceSequence[0].ReferencedSeriesSequence
    assert src.SOPInstanceUID in {
        i.ReferencedSOPInstanceUID for s in evidence for i in s.ReferencedSOPSequence
    }

    # the coded findings carry predict's probabilities (the CSV), label by label
    labels = [c[len("p_") :] for c in predictions.columns if c.startswith("p_")]
    code_of = codes_for(labels)
    got = _findings(sr)
    assert sorted(got) == sorted((code_of[label][0], code_of[label][1]) for label in labels)
    for label in labels:
        expected = predictions[f"p_{label}"].iloc[0]
        assert got[code_of[label][0], code_of[label][1]] == pytest.approx(expected, abs=1e-6)

    # the map on the source's grid, 0-1, and exactly the file written locally (nothing lost on the way)
    local = pydicom.dcmread(stored["pmap"]["file"])
    heat = pm.pixel_array
    assert heat.dtype == np.float32 and heat.shape[-2:] == (src.Rows, src.Columns)
    assert heat.min() >= 0 and heat.max() <= 1 and heat.max() > 0
    assert np.array_equal(heat, local.pixel_array)

    # a second run finds the study's new SR and map series and skips them by modality
    assert main([*argv, "--out", str(tmp_path / "again"), "--no-progress"]) == 0
    with open(tmp_path / "again" / "dicomweb.csv", newline="") as f:
        skipped = [r for r in csv.DictReader(f) if r["step"] == "query" and r["status"] == "skipped"]
    assert sorted(r["uid"] for r in skipped) == sorted(u for u in series if u != src.SeriesInstanceUID)


def test_a_failed_store_makes_exit_code_1_and_the_rest_is_stored(
    orthanc, real_dicom, tiny_run, tmp_path, capsys, monkeypatch
):
    """The map's STOW refused (a stand-in for the server's refusal; Orthanc will not refuse on
    demand), the SR's stored: the command reports both and ends with 1."""
    import chestxai.dicomweb.roundtrip as roundtrip
    from chestxai.dicomout.names import PMAP_SUFFIX
    from chestxai.dicomweb.transfer import Stored

    real_store = roundtrip.store

    def refuse_maps(server, path):
        if path.name.endswith(PMAP_SUFFIX):
            return Stored(
                path, pydicom.dcmread(path).SOPInstanceUID, False, "refused: 0xA700 out of resources"
            )
        return real_store(server, path)

    monkeypatch.setattr(roundtrip, "store", refuse_maps)
    server = Server(ServerSettings(orthanc.dicomweb, retries=0))
    source = derive(real_dicom, tmp_path / "source.dcm", study=generate_uid())
    src = pydicom.dcmread(source)
    assert store(server, source).stored
    argv = ["dicomweb", str(tiny_run), "--url", orthanc.dicomweb, "--study", src.StudyInstanceUID]
    assert main([*argv, "--store", "--out", str(tmp_path / "out"), "--no-progress", "--device", "cpu"]) == 1
    printed = capsys.readouterr().out
    assert "1 failed:" in printed and "store pmap" in printed and "0xA700 out of resources" in printed
    modalities = sorted(value(s, "00080060") for s in server.client.search_for_series(src.StudyInstanceUID))
    assert modalities == ["CR", "SR"]  # the SR went in; the map did not
