"""Int8 emotion networks: calibration, the rebuild from stored scales, the CPU test, and the tool that
quantizes a model and checks it on the holdout."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from core.vision.emotion import classifier as classifier_module
from core.vision.emotion import quantized
from core.vision.emotion.classifier import INT8_MODEL, QUANTIZATION, EmotionClassifier, to_input
from core.vision.emotion.network import EmotionNet, EmotionResNet
from core.vision.emotion.quantized import calibrate, int8_native, quantize
from training.emotion_dataset import holdout_split, load_split
from training.emotion_quantize import calibration_faces, quantize_model
from training.train_emotion import TrainConfig, train


def small_network(seed: int = 0) -> EmotionNet:
    """A small VGG with non-trivial batch-norm statistics, in eval mode."""
    torch.manual_seed(seed)
    net = EmotionNet((8, 16, 16, 32))
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            assert module.running_mean is not None and module.running_var is not None
            module.running_mean.uniform_(-0.2, 0.2)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
    return net.eval()


def faces(count: int, seed: int) -> torch.Tensor:
    images = np.random.default_rng(seed).integers(0, 255, (count, 48, 48), dtype=np.uint8)
    return to_input(images, 0.5, 0.25)


def test_int8_network_reads_as_the_float_one_and_rebuilds_the_same_from_its_scales() -> None:
    net = small_network()
    qparams = calibrate(net, [faces(64, 1), faces(64, 2)])
    assert len(qparams) >= 9 and all(s > 0 and 0 <= z <= 255 for s, z in qparams.values())
    stored = json.loads(json.dumps(qparams))  # as a model file keeps them: lists of plain numbers
    test = faces(32, 3)
    with torch.inference_mode():
        reference = torch.softmax(net(test), 1)
        first, again = quantize(net, qparams)(test), quantize(net, stored)(test)
    assert torch.equal(first, again)  # the same bits on every load
    assert (torch.softmax(first, 1) - reference).abs().max() < 0.05
    assert (first.argmax(1) == reference.argmax(1)).float().mean() >= 0.9


def test_7_bit_activations_stay_within_0_to_127_and_read_as_the_float_network() -> None:
    """For CPUs without VNNI: codes that AVX2's 16-bit sums of two 8-bit products cannot saturate
    (2 x 127 x 127 < 32767); the rebuild from stored scales is exact, as at 8 bits."""
    net = small_network()
    batches = [faces(64, 1), faces(64, 2)]
    eight, seven = calibrate(net, batches), calibrate(net, batches, bits=7)
    assert set(seven) == set(eight) and all(0 <= z <= 127 for _, z in seven.values())
    # The same range in half the codes: each activation's step is about twice the 8-bit one.
    assert all(1.8 < seven[k][0] / eight[k][0] < 2.2 for k in seven)
    test = faces(32, 3)
    stored = json.loads(json.dumps(seven))
    with torch.inference_mode():
        reference = torch.softmax(net(test), 1)
        first, again = quantize(net, seven, bits=7)(test), quantize(net, stored, bits=7)(test)
    assert torch.equal(first, again)
    assert (torch.softmax(first, 1) - reference).abs().max() < 0.08
    with pytest.raises(ValueError, match="bits"):
        calibrate(net, batches, bits=4)


def test_avx2_follows_the_kernels_dispatch(monkeypatch: pytest.MonkeyPatch) -> None:
    """``ATEN_CPU_CAPABILITY`` caps what PyTorch dispatches to; ``avx2`` reads that, not the CPU's flags."""
    monkeypatch.setattr(quantized, "engines", lambda: ["x86", "onednn"])
    for capability, expected in (("AVX512", True), ("AVX2", True), ("DEFAULT", False), ("ZVECTOR", False)):
        monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda c=capability: c)
        assert quantized.avx2() == expected
    monkeypatch.setattr(quantized, "engines", lambda: ["qnnpack"])  # no x86 int8 kernels: not at all
    assert not quantized.avx2()


def test_quantize_refuses_scales_of_another_graph_and_calibration_needs_faces() -> None:
    resnet = EmotionResNet((8, 16, 16, 32)).eval()
    with pytest.raises(ValueError, match="emotion_quantize"):
        quantize(small_network(), calibrate(resnet, [faces(8, 1)]))
    with pytest.raises(ValueError, match="at least one face"):
        calibrate(small_network(), [])


def test_int8_is_native_only_on_a_cpu_with_vnni_or_amx(monkeypatch: pytest.MonkeyPatch) -> None:
    assert not int8_native("cuda")
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    for vnni, amx in ((True, False), (False, True), (False, False)):
        monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda v=vnni: v, raising=False)
        monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda a=amx: a, raising=False)
        assert int8_native() == (vnni or amx)
    # Kernels capped at AVX2 (an older CPU's code paths, ATEN_CPU_CAPABILITY=avx2): not native.
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")
    assert not int8_native() and not classifier_module.native_bfloat16()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX512")
    monkeypatch.setattr(quantized, "engines", lambda: ["qnnpack"])
    monkeypatch.setattr(torch.cpu, "_is_vnni_supported", lambda: True, raising=False)
    assert not int8_native()
    assert quantized.ENGINE == "x86"


@pytest.mark.slow
def test_quantize_model_calibrates_on_the_fit_part_and_checks_int8_on_the_holdout(
    tiny_fer: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = TrainConfig(
        data=tiny_fer, out=tmp_path / "m.pt", epochs=1, batch_size=32, widths=(8, 16, 16, 32), device="cpu"
    )
    train(config, log=lambda *_: None)
    model = tmp_path / "model.json"
    model.write_text(json.dumps({"name": "tiny", "members": ["m.pt"], "tta": "flip"}))
    train_faces = load_split(tiny_fer / "train")
    split = holdout_split(train_faces)
    drawn = calibration_faces(train_faces, count=50)
    fit_hashes = {f.tobytes() for f in train_faces.images[split.fit]}
    assert len(drawn) == 50 and all(f.tobytes() in fit_hashes for f in drawn.images)

    contents = quantize_model(model, tiny_fer, faces=50)
    int8_file = tmp_path / "model_int8.json"
    assert json.loads(model.read_text())[INT8_MODEL] == int8_file.name
    assert json.loads(int8_file.read_text()) == contents
    assert contents["precision"] == "int8" and contents["members"] == ["m.pt"] and contents["tta"] == "flip"
    assert set(contents[QUANTIZATION]["activations"]) == {"m.pt"}
    holdout = contents["holdout"]
    assert holdout["split"] == f"holdout of train ({len(split.holdout)} faces)"
    assert 0 <= holdout["labels_changed"] <= len(split.holdout)
    assert holdout["max_probability_change"] < 0.2
    reference = holdout["reference"]
    assert abs(holdout["holdout_log_loss"] - reference["holdout_log_loss"]) < 0.05

    monkeypatch.setattr(classifier_module, "int8_native", lambda device="cpu": True)
    clf = EmotionClassifier(model)
    assert (clf.weights, clf.precision, clf.tta) == (int8_file, "int8", "flip")
    monkeypatch.setattr(classifier_module, "int8_native", lambda device="cpu": False)
    assert EmotionClassifier(model).weights == model
