"""Issue 20 item 22: malformed chestxai metadata in an .onnx file gives one error line naming the
file and the field (it gave tracebacks: KeyError, TypeError, a shape mismatch in decide)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from serve_helpers import write_png

pytest.importorskip("onnxruntime", reason="pip install 'chestxai[export]'")
onnx = pytest.importorskip("onnx", reason="pip install 'chestxai[export]'")

from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from chestxai.cli import main  # noqa: E402
from chestxai.export.runtime import METADATA_KEY, OnnxModel  # noqa: E402

SIDE, LABELS = 8, ["Atelectasis", "Nodule"]
GOOD = {
    "format": 1,
    "label_names": LABELS,
    "task": "multilabel",
    "model": "tiny",
    "preprocess": {"size": SIDE, "mean": 0.5, "std": 0.25},
    "resize_to": SIDE,
    "thresholds": {"Atelectasis": 0.4, "Nodule": 0.6},
    "temperature": None,
}


def tiny_onnx(path, meta, labels: int = len(LABELS)):
    """image N x 1 x SIDE x SIDE -> Flatten -> MatMul -> Sigmoid -> probabilities N x labels, with ``meta``."""
    weights = np.random.default_rng(0).normal(size=(SIDE * SIDE, labels)).astype(np.float32) * 0.05
    graph = helper.make_graph(
        [
            helper.make_node("Flatten", ["image"], ["flat"], axis=1),
            helper.make_node("MatMul", ["flat", "w"], ["logits"]),
            helper.make_node("Sigmoid", ["logits"], ["probabilities"]),
        ],
        "tiny",
        [helper.make_tensor_value_info("image", TensorProto.FLOAT, ["batch", 1, SIDE, SIDE])],
        [helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["batch", labels])],
        [numpy_helper.from_array(weights, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    if meta is not None:
        entry = model.metadata_props.add()
        entry.key, entry.value = METADATA_KEY, meta if isinstance(meta, str) else json.dumps(meta)
    onnx.save(model, str(path))
    return path


def edited(**changes):
    meta = json.loads(json.dumps(GOOD))
    for key, value in changes.items():
        if "__" in key:
            outer, inner = key.split("__")
            meta[outer][inner] = value
        elif value is KeyError:
            meta.pop(key)
        else:
            meta[key] = value
    return meta


BAD = {
    "not JSON": ("{label_names: [", "not valid JSON"),
    "not an object": ([1, 2], "'chestxai'"),
    "labels missing": (edited(label_names=KeyError), "'label_names'"),
    "labels empty": (edited(label_names=[]), "'label_names'"),
    "labels not strings": (edited(label_names=[1, 2]), "'label_names'"),
    "labels repeated": (edited(label_names=["Nodule", "Nodule"]), "'label_names'"),
    "labels vs outputs": (
        edited(label_names=["A", "B", "C"], thresholds={"A": 0.5, "B": 0.5, "C": 0.5}),
        "2 name(s), one per output column",
    ),
    "task unknown": (edited(task="regression"), "'task'"),
    "task missing": (edited(task=KeyError), "'task'"),
    "binary with two labels": (edited(task="binary"), "exactly one name"),
    "resize_to zero": (edited(resize_to=0), "'resize_to'"),
    "resize_to a string": (edited(resize_to="8"), "'resize_to'"),
    "resize_to a float": (edited(resize_to=8.5), "'resize_to'"),
    "resize_to vs input": (edited(resize_to=16), "the side of the model's input"),
    "preprocess missing": (edited(preprocess=KeyError), "'preprocess'"),
    "preprocess size negative": (edited(preprocess__size=-3), "'preprocess.size'"),
    "mean not finite": (edited(preprocess__mean=float("nan")), "'preprocess.mean'"),
    "std zero": (edited(preprocess__std=0), "'preprocess.std'"),
    "std infinite": (edited(preprocess__std=float("inf")), "'preprocess.std'"),
    "thresholds a list": (edited(thresholds=[0.4, 0.6]), "'thresholds'"),
    "threshold missing for a label": (edited(thresholds={"Atelectasis": 0.4}), "'thresholds'"),
    "threshold above 1": (edited(thresholds={"Atelectasis": 1.5, "Nodule": 0.5}), "'thresholds.Atelectasis'"),
    "threshold negative": (edited(thresholds={"Atelectasis": 0.5, "Nodule": -0.1}), "'thresholds.Nodule'"),
    "threshold a string": (
        edited(thresholds={"Atelectasis": "0.5", "Nodule": 0.5}),
        "'thresholds.Atelectasis'",
    ),
    "threshold null": (edited(thresholds={"Atelectasis": None, "Nodule": 0.5}), "'thresholds.Atelectasis'"),
    "temperature negative": (edited(temperature=-1.0), "'temperature'"),
    "model not a string": (edited(model=["resnet"]), "'model'"),
}


def test_good_metadata_loads_and_scores(tmp_path):
    m = OnnxModel(tiny_onnx(tmp_path / "good.onnx", GOOD))
    assert (
        m.label_names == LABELS
        and m.resize_to == SIDE
        and m.thresholds == {"Atelectasis": 0.4, "Nodule": 0.6}
    )
    probs = m.forward(np.zeros((3, SIDE, SIDE), np.uint8))
    assert probs.shape == (3, 2) and m.decisions(probs).shape == (3, 2)


@pytest.mark.parametrize("case", list(BAD), ids=list(BAD))
def test_bad_metadata_is_one_error_naming_file_and_field(case, tmp_path):
    meta, field = BAD[case]
    path = tiny_onnx(tmp_path / "bad.onnx", meta)
    with pytest.raises(ValueError) as info:
        OnnxModel(path)
    message = str(info.value)
    assert str(path) in message and field in message and "\n" not in message


@pytest.mark.parametrize("case", ["labels missing", "threshold above 1", "resize_to a string"])
def test_predict_onnx_with_bad_metadata_exits_2_with_one_line(case, tmp_path, capsys):
    path = tiny_onnx(tmp_path / "bad.onnx", BAD[case][0])
    image = write_png(tmp_path / "a.png", np.full((10, 10), 128, np.uint8))
    code = main(["predict", "--onnx", str(path), "--images", str(image), "--out", str(tmp_path / "o.csv")])
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert err.count("\n") == 1 and str(path) in err and BAD[case][1] in err
