"""The explainer registry: every method runs, CAM and the PCAM map are what they claim, targets are right,
batches cost one forward and one backward, hooks never stay behind, bad requests fail clearly."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from explain_helpers import tiny_model
from pytorch_grad_cam.utils.image import scale_cam_image
from pytorch_grad_cam.utils.model_targets import BinaryClassifierOutputTarget, ClassifierOutputTarget

from chestxai.explain import Explainer, UnsupportedMethodError, list_methods
from chestxai.explain.methods import CONTROL, METHODS, Method, gradient_methods, method_options
from chestxai.explain.methods.library import ScoreCAMMethod
from chestxai.explain.settings import ExplainSettings
from chestxai.explain.targets import ProbabilityTarget, UnknownFindingError, finding_index
from chestxai.models import create_model
from chestxai.registry import UnknownNameError


def _hooks(model):
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )


@pytest.fixture
def model():
    torch.manual_seed(0)
    return tiny_model(num_labels=3, task="multilabel").eval()


@pytest.fixture
def x():
    return torch.randn(3, 1, 32, 32, generator=torch.Generator().manual_seed(1))


def test_registry_has_the_cam_family_and_a_control():
    names = set(list_methods())
    assert {
        "cam",
        "gradcam",
        "gradcam++",
        "xgradcam",
        "layercam",
        "scorecam",
        "eigencam",
        "hirescam",
    } <= names
    assert {CONTROL, "pcam"} <= names
    assert set(gradient_methods()) == {"gradcam", "gradcam++", "xgradcam", "layercam", "hirescam"}


def _model_for(method, pooled_model):
    """The pooled test model, or a PCAM-head one for methods that need it: every registered method
    must run on one of the two, so a new method file is under test the moment it is registered."""
    try:
        return Explainer(pooled_model, method), pooled_model
    except UnsupportedMethodError:
        torch.manual_seed(0)
        pcam = tiny_model(num_labels=3, task="multilabel", head="pcam").eval()
        return Explainer(pcam, method), pcam


@pytest.mark.parametrize("method", list_methods())
def test_every_method_gives_unit_range_maps_and_leaves_no_hooks(model, x, method):
    explainer, used = _model_for(method, model)
    heat = explainer.explain(x, [0, 1, 2])
    assert heat.shape == (3, 32, 32) and np.isfinite(heat).all()
    assert heat.min() >= 0 and heat.max() <= 1 + 1e-6
    assert _hooks(used) == 0
    assert all(p.requires_grad for p in used.parameters())
    assert METHODS.get(method).summary, f"{method} needs a one-line summary for --list-methods"


def test_method_knobs_live_with_the_method(model, x, monkeypatch):
    """Issue 8: ScoreCAM's batch size is ScoreCAM's option, not a field of the generic Explainer."""
    assert method_options("scorecam") == {"batch_size": 64} and method_options("gradcam") == {}
    seen = []
    real_build = ScoreCAMMethod.build

    def spy(self, *args, **kwargs):
        cam = real_build(self, *args, **kwargs)
        seen.append(cam.batch_size)
        return cam

    monkeypatch.setattr(ScoreCAMMethod, "build", spy)
    Explainer(model, "scorecam", options={"batch_size": 5}).explain(x[:1], [0])
    settings = ExplainSettings(method_options={"scorecam": {"batch_size": 7}})
    Explainer(model, "scorecam", options=settings.options_for("scorecam")).explain(x[:1], [0])
    assert seen == [5, 7]
    with pytest.raises(ValueError, match="unknown option.*bogus.*batch_size"):
        Explainer(model, "scorecam", options={"bogus": 1})
    with pytest.raises(ValueError, match="its options: none"):
        ExplainSettings(method_options={"gradcam": {"batch_size": 2}})
    with pytest.raises(ValueError, match=">= 1"):
        ExplainSettings(method_options={"scorecam": {"batch_size": 0}})
    with pytest.raises(UnknownNameError, match="scorecam"):
        ExplainSettings(method_options={"scorecamm": {}})


def test_a_registered_method_needs_no_edit_elsewhere(model, x, monkeypatch):
    """Issue 8: a new explainer is one Method subclass in one file; registering it is all it takes for
    Explainer, --method and the parametrised test above (registered here for this test only)."""
    from pytorch_grad_cam.base_cam import BaseCAM

    class Flat(BaseCAM):
        def __init__(self, model, target_layers, reshape_transform=None):
            super().__init__(model, target_layers, reshape_transform, uses_gradients=False)

        def get_cam_image(self, input_tensor, target_layer, targets, activations, grads, eigen_smooth):
            b, _, h, w = activations.shape
            out = np.zeros((b, h, w), np.float32)
            out[:, 0, 0] = 1.0
            return out

    class FlatMethod(Method):
        summary = "one hot corner (test)"

        def build(self, model, target_layers, reshape_transform=None, rng=None):
            return Flat(model, target_layers, reshape_transform)

    list_methods()  # the package's own methods first
    monkeypatch.setitem(METHODS._items, "corner", FlatMethod)
    assert "corner" in list_methods()
    heat = Explainer(model, "corner").explain(x, [0, 1, 2])
    assert heat.shape == (3, 32, 32) and heat[:, 0, 0].min() == pytest.approx(1.0)


def test_cam_is_class_weights_times_features(model, x):
    """CAM by hand: W[k] . A, ReLU, min-max, bilinear resize, min-max again (the library rescales after
    resizing) - and Grad-CAM equals it on a GAP model."""
    heat = Explainer(model, "cam", align=False).explain(x, [2, 0, 1])  # the library's placement
    with torch.no_grad():
        fmap = model.features(x).numpy()
    w = model.classifier_weights().detach().numpy()
    manual = np.einsum("bc,bchw->bhw", w[[2, 0, 1]], fmap)
    expected = scale_cam_image(scale_cam_image(np.maximum(manual, 0), (32, 32)))
    np.testing.assert_allclose(heat, expected, atol=1e-5)
    # Grad-CAM's channel weights on a GAP + linear model are W / (h*w): the same map after scaling
    np.testing.assert_allclose(
        Explainer(model, "gradcam", align=False).explain(x, [2, 0, 1]), heat, atol=1e-4
    )
    # aligned (the default): the same maps moved by the measured receptive-field shift
    from chestxai.explain.alignment import shift_maps

    aligned = Explainer(model, "cam")
    np.testing.assert_allclose(
        aligned.explain(x, [2, 0, 1]), shift_maps(heat, aligned.shift_for(x)), atol=1e-5
    )


def test_cam_is_refused_where_the_identity_does_not_hold():
    vit = create_model("vit_tiny", num_labels=2, input_size=32)
    with pytest.raises(UnsupportedMethodError, match="gradcam"):
        Explainer(vit, "cam")
    with pytest.raises(UnsupportedMethodError, match="pcam"):
        Explainer(tiny_model(num_labels=2, task="multilabel", head="pcam"), "cam")
    with pytest.raises(UnsupportedMethodError, match="final feature map"):
        Explainer(tiny_model(num_labels=2, task="multilabel"), "cam", layer="backbone.stem")


def test_pcam_map_is_the_heads_probability_map(x):
    torch.manual_seed(0)
    model = tiny_model(num_labels=3, task="multilabel", head="pcam").eval()
    heat = Explainer(model, "pcam", align=False).explain(x, [1, 1, 2])
    with torch.no_grad():
        maps = model.head.probability_maps(model.features(x)).numpy()
    expected = scale_cam_image(scale_cam_image(maps[[0, 1, 2], [1, 1, 2]], (32, 32)))
    np.testing.assert_allclose(heat, expected, atol=1e-5)
    with pytest.raises(UnsupportedMethodError, match="head='pcam'"):
        Explainer(tiny_model(num_labels=3, task="multilabel"), "pcam")


def test_random_control_is_seeded_and_private(model, x):
    state = np.random.get_state()[1].copy()
    a = Explainer(model, CONTROL, seed=3).explain(x, [0, 0, 0])
    b = Explainer(model, CONTROL, seed=3).explain(x, [0, 0, 0])
    c = Explainer(model, CONTROL, seed=4).explain(x, [0, 0, 0])
    assert np.array_equal(a, b) and not np.array_equal(a, c)
    assert np.array_equal(state, np.random.get_state()[1]), (
        "the control must not draw from NumPy's global state"
    )


def test_targets_explain_the_named_output(model, x):
    explainer = Explainer(model, "gradcam")
    assert not np.allclose(explainer.explain(x[:1], [0]), explainer.explain(x[:1], [2]))
    # binary single logit: ClassifierOutputTarget(0) is the logit itself, as BinaryClassifierOutputTarget(1)
    logit = torch.tensor([1.7])
    assert ClassifierOutputTarget(0)(logit).item() == pytest.approx(1.7)
    assert BinaryClassifierOutputTarget(1)(logit).item() == pytest.approx(1.7)
    binary = tiny_model(num_labels=1, task="binary").eval()
    assert Explainer(binary, "gradcam").explain(x, [0, 0, 0]).shape == (3, 32, 32)
    # probabilities for faithfulness: sigmoid per output, softmax across classes for multi-class
    out = torch.tensor([0.0, 1.0, 2.0])
    assert ProbabilityTarget(1, multiclass=False)(out).item() == pytest.approx(1 / (1 + np.exp(-1)))
    assert ProbabilityTarget(2, multiclass=True)(out).item() == pytest.approx(
        np.exp(2) / np.exp(out.numpy()).sum()
    )


def test_multiclass_model_explains_each_class(x):
    torch.manual_seed(0)
    model = tiny_model(num_labels=3, task="multiclass").eval()
    heat = Explainer(model, "gradcam++").explain(x, [0, 1, 2])
    assert heat.shape == (3, 32, 32)


def test_one_forward_and_one_backward_per_batch(model):
    calls = {"forward": 0, "backward": 0}
    fwd = model.register_forward_hook(lambda *a: calls.__setitem__("forward", calls["forward"] + 1))
    bwd = model.backbone.stem.register_full_backward_hook(
        lambda *a: calls.__setitem__("backward", calls["backward"] + 1)
    )
    try:
        x = torch.randn(8, 1, 32, 32)
        for method in gradient_methods():
            explainer = Explainer(model, method)  # (finding the layer traces the model once)
            explainer.shift_for(x)  # the one-off alignment probe per input shape (chestxai.explain.alignment)
            calls.update(forward=0, backward=0)
            explainer.explain(x, [0, 1, 2, 0, 1, 2, 0, 1])
            assert calls == {"forward": 1, "backward": 1}, method
    finally:
        fwd.remove()
        bwd.remove()


def test_hooks_are_released_when_explaining_fails(model, x):
    explainer = Explainer(model, "gradcam")
    with pytest.raises(ValueError, match="out of range"):
        explainer.explain(x, [0, 1, 7])
    with pytest.raises(ValueError, match="one per image"):
        explainer.explain(x, [0])
    assert _hooks(model) == 0 and all(p.requires_grad for p in model.parameters())


def test_bad_requests_fail_clearly(model):
    with pytest.raises(UnknownNameError, match="gradcam"):
        Explainer(model, "gradcamm")  # suggests the close match and lists valid methods
    with pytest.raises(UnknownFindingError) as err:
        finding_index(["Atelectasis", "Mass"], "Nodule")
    assert "Atelectasis, Mass" in str(err.value) and "--finding" in str(err.value)
    assert finding_index(["Atelectasis", "Mass"], "mass") == 1
