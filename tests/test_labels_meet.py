"""Where two datasets' labels meet (chestxai.labels.meet): by name, synonym, hierarchy part and
kind, never across a binary label's negatives; and the targets of a finding carried by several
columns."""

import numpy as np
import pytest

from chestxai.data.readers.chexpert import LABELS as CHEXPERT
from chestxai.data.readers.rsna import LABEL as RSNA
from chestxai.data.readers.siim import LABEL as SIIM
from chestxai.labels import NIH14, finding_key, is_kind_of, meet, same_finding, shared_targets
from chestxai.models.xrv import PATHOLOGIES

COVID_JUNE_2020 = ["ARDS", "COVID-19", "Klebsiella", "Legionella", "Pneumocystis", "SARS", "Streptococcus"]


def test_nih_meets_chexpert_by_name_and_synonym():
    m = meet(NIH14, CHEXPERT)
    assert m.shared["Effusion"] == ["Pleural Effusion"] and m.how["Effusion"] == "synonym"
    assert m.shared["Pneumonia"] == ["Pneumonia"] and m.how["Pneumonia"] == "name"
    assert set(m.shared) == {"Atelectasis", "Cardiomegaly", "Effusion", "Pneumonia", "Pneumothorax",
                             "Consolidation", "Edema"}  # fmt: skip
    # CheXpert's Lung Opacity / Lung Lesion are not NIH's Infiltration / Mass / Nodule
    assert "Infiltration" in m.run_only and "Lung Opacity" in m.data_only and "Lung Lesion" in m.data_only


def test_rsna_and_siim_meet_nih():
    assert meet(NIH14, [RSNA], "binary").shared == {"Pneumonia": ["Pneumonia"]}
    assert meet(NIH14, [SIIM], "binary").shared == {"Pneumothorax": ["Pneumothorax"]}
    assert meet(["pneumonia"], NIH14).how == {"pneumonia": "synonym"}  # PneumoniaMNIST's spelling


def test_covid_collection_kinds_and_hierarchy_meet_pneumonia():
    flat = meet(NIH14, COVID_JUNE_2020, "multilabel")
    assert flat.shared == {"Pneumonia": [n for n in COVID_JUNE_2020 if n != "ARDS"]}
    assert flat.how["Pneumonia"] == "kind" and flat.data_only == ["ARDS"]
    tree = meet(
        NIH14,
        ["No Finding", "Pneumonia/Viral/COVID-19", "ARDS", "Pneumonia/Bacterial/Streptococcus"],
        "multiclass",
    )
    assert tree.shared["Pneumonia"] == ["Pneumonia/Viral/COVID-19", "Pneumonia/Bacterial/Streptococcus"]
    assert tree.how["Pneumonia"] == "part"
    # a comma-joined multi-class name carries each of its parts
    assert meet(["COVID-19"], ["COVID-19", "COVID-19, ARDS", "SARS"], "multiclass").shared == {
        "COVID-19": ["COVID-19", "COVID-19, ARDS"]
    }


def test_a_binary_kind_does_not_meet_its_parent():
    m = meet(["Pneumonia"], ["COVID-19"], "binary")
    assert m.shared == {} and m.run_only == ["Pneumonia"] and "not free of Pneumonia" in m.notes[0]


def test_keys_fold_spelling_and_xrv_uses_the_same_fact():
    assert finding_key("Pleural_Thickening") == finding_key("pleural thickening")
    assert same_finding("Lung Nodule", "Nodule") and same_finding("Infiltrate", "infiltration")
    assert not same_finding("COVID-19", "COVID") and not same_finding("Edema", "Effusion")
    assert is_kind_of("sars", "pneumonia") and not is_kind_of("ARDS", "Pneumonia")
    # every torchxrayvision pathology named in NIH14 meets its NIH label by name
    m = meet(NIH14, PATHOLOGIES)
    assert all(m.shared[n] == [n] for n in NIH14)


def test_shared_targets_any_positive_all_known_negative():
    labels = np.array([[1, 0, 0], [0, 0, 0], [0, np.nan, 0], [np.nan, 1, 0], [np.nan, np.nan, np.nan]])
    got = shared_targets(labels, ["a", "b", "c"], ["a", "b"])
    np.testing.assert_array_equal(got, [1, 0, np.nan, 1, np.nan])
    with pytest.raises(ValueError):
        shared_targets(labels, ["a", "b", "c"], ["d"])


@pytest.mark.realdata
def test_the_real_covid_collection_meets_nih_on_pneumonia(shared_data):
    """The June 2020 snapshot in ../shared/data, read as multi-label: its pathogens carry
    Pneumonia; 7 rows are pneumonia-free (3 No Finding, 4 ARDS only)."""
    from chestxai.data.readers.covid_collection import read

    table = read(shared_data / "covid-collection", label_mode="multilabel", masks=False)
    m = meet(NIH14, table.label_names, table.task)
    assert m.how == {"Pneumonia": "kind"} and m.data_only == ["ARDS"]
    y = shared_targets(table.labels, table.label_names, m.shared["Pneumonia"])
    assert (y == 0).sum() == 7 and (y == 1).sum() == len(y) - 7
