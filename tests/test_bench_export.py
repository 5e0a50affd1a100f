"""VNN-LIB 1.0/2.0 writers and readers, and the VNN-COMP benchmark export, on the real shared nets."""

from __future__ import annotations

import csv
import gzip
import json
import re
from pathlib import Path

import numpy as np
import pytest
import vnnlib
import vnnlib.compat
from conftest import DATASETS, SHARED, model_path

from graftonnx.bench import (
    Property,
    export_benchmark,
    parse_vnnlib,
    parse_vnnlib2,
    read_vnnlib,
    read_vnnlib2,
    vnnlib2_text,
    vnnlib_text,
    write_vnnlib,
    write_vnnlib2,
)
from graftonnx.bench import export as export_mod
from graftonnx.data import Dataset, DataSpec, load_dataset
from graftonnx.errors import BadInput
from graftonnx.model import inspect_model, load_model
from graftonnx.parity import assert_parity, ort_callable

EXAMPLES = SHARED / "vnncomp-examples"
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2471, 0.2435, 0.2616)


def _data(net: str, csv_name: str, **spec: object) -> Dataset:
    path = model_path(net)
    return load_dataset(str(DATASETS / csv_name), inspect_model(load_model(path)), DataSpec(**spec))


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def mnist_data() -> Dataset:
    return _data("mnist-net_256x2", "eran_mnist_test.csv")


@pytest.fixture(scope="module")
def bench(tmp_path_factory: pytest.TempPathFactory, mnist_data: Dataset):
    out = tmp_path_factory.mktemp("a") / "bench"
    info = export_benchmark([model_path("mnist-net_256x2")], mnist_data, eps=0.02, n=8, seed=3, out=out,
                            timeout=60, gz=True)
    return info, out


# --- the benchmark folder ------------------------------------------------------------------------------------

def test_instances_csv_is_valid(bench) -> None:
    info, out = bench
    for root in (out, out / "2.0"):
        rows = list(csv.reader((root / "instances.csv").read_text().splitlines()))
        assert len(rows) == 8 == info.n_instances
        for onnx_path, spec_path, timeout in rows:
            assert (root / onnx_path).resolve().is_file() and (root / spec_path).is_file()
            assert float(timeout) == 60
    assert (out / "onnx" / "mnist-net_256x2.onnx").read_bytes() == model_path("mnist-net_256x2").read_bytes()
    assert gzip.decompress((out / info.properties[0]).with_suffix(".vnnlib.gz").read_bytes()) == \
        (out / info.properties[0]).read_bytes()
    readme = (out / "README.md").read_text()
    for text in ("0.02", "| seed | 3 |", "60 s", "| properties | 8 (requested 8) |", "mnist-net_256x2.onnx"):
        assert text in readme


def test_v1_and_v2_describe_the_same_property(bench, mnist_data: Dataset) -> None:
    info, out = bench
    for idx, v1, v2 in zip(info.indices, info.properties, info.properties_v2, strict=True):
        p1, p2 = read_vnnlib(out / v1), read_vnnlib2(out / v2)
        assert p1.same_as(p2)
        x = mnist_data.x[idx].ravel()
        assert p1.label == int(mnist_data.y[idx]) and p1.n_classes == 10 and p1.contains(x, tol=0)
        assert p1.lower.min() >= 0 and p1.upper.max() <= 1
        expect_lo = np.clip(x.astype(np.float64) - 0.02, 0, 1).astype(np.float32)
        assert np.array_equal(p1.lower, expect_lo)  # exact: float32 text round trip
        assert np.isclose((p1.upper - p1.lower).max(), 0.04, atol=1e-6)
        # the 2.0 output polytopes, straight from the reference parser, are the property's
        case = vnnlib.compat.transform_to_compat(vnnlib.parse_query_string((out / v2).read_text()))[0]
        got = [(np.asarray(p.coeff_matrix), np.asarray(p.rhs)) for p in case.output_constraints]
        want = p1.output_polytopes()
        assert len(got) == len(want) == 9
        assert all(np.array_equal(a, c) and np.array_equal(b, d) for (a, b), (c, d) in zip(got, want, strict=True))


def test_export_is_deterministic_and_seeded(tmp_path: Path, bench, mnist_data: Dataset) -> None:
    info, out = bench
    again = export_benchmark([model_path("mnist-net_256x2")], mnist_data, eps=0.02, n=8, seed=3,
                             out=tmp_path / "bench", timeout=60, gz=True)
    assert _files(tmp_path / "bench") == _files(out)
    assert again.indices == info.indices
    other = export_benchmark([model_path("mnist-net_256x2")], mnist_data, eps=0.02, n=8, seed=4,
                             out=tmp_path / "other", timeout=60)
    assert other.indices != info.indices
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folders left


def test_misclassified_images_are_skipped(tmp_path: Path) -> None:
    data = _data("mnist_relu_9_200", "eran_mnist_test.csv")  # 97% accurate on these 100 images
    info = export_benchmark([model_path("mnist_relu_9_200")], data, eps=0.01, n=100, seed=0, out=tmp_path / "b",
                            timeout=30)
    assert info.n_properties == 97 and info.skipped_misclassified == 3
    none = export_benchmark([model_path("mnist_relu_9_200")], data, eps=0.01, n=100, seed=0, out=tmp_path / "c",
                            timeout=30, skip="none")
    assert none.n_properties == 100 and none.skipped_misclassified == 0
    wrong = sorted(set(none.indices) - set(info.indices))
    assert len(wrong) == 3
    p2 = read_vnnlib2(tmp_path / "b" / info.properties_v2[0])  # 4-d input [1,1,28,28]
    assert "X float32 [1,1,28,28]" in (tmp_path / "b" / info.properties_v2[0]).read_text()
    assert p2.same_as(read_vnnlib(tmp_path / "b" / info.properties[0]))


def test_normalisation_is_folded_into_the_exported_model(tmp_path: Path) -> None:
    data = _data("resnet_2b", "eran_cifar10_test.csv", mean=CIFAR_MEAN, std=CIFAR_STD, n=12)
    info = export_benchmark([model_path("resnet_2b")], data, eps=2 / 255, n=2, seed=0, out=tmp_path / "r",
                            timeout=300)
    src = load_model(model_path("resnet_2b"))
    exported = load_model(tmp_path / "r" / info.models[0].path)
    assert exported.graph.input[0].name == src.graph.input[0].name
    assert exported.graph.output[0].name == src.graph.output[0].name
    mean = np.asarray(CIFAR_MEAN, dtype=np.float32).reshape(1, 3, 1, 1)
    std = np.asarray(CIFAR_STD, dtype=np.float32).reshape(1, 3, 1, 1)
    ref = ort_callable(src)
    assert_parity(lambda x: ref((x - mean) / std), ort_callable(exported), data.x, atol=1e-4)
    prop = read_vnnlib(tmp_path / "r" / info.properties[0])
    assert prop.n_inputs == 3072 and prop.lower.min() >= 0 and prop.upper.max() <= 1  # raw pixel space
    assert prop.same_as(read_vnnlib2(tmp_path / "r" / info.properties_v2[0]))


def test_several_models_share_the_properties(tmp_path: Path, mnist_data: Dataset) -> None:
    net = model_path("mnist-net_256x2")
    info = export_benchmark([net, net], mnist_data, eps=0.01, n=3, seed=0, out=tmp_path / "b", timeout=10)
    rows = (tmp_path / "b" / "instances.csv").read_text().splitlines()
    assert len(rows) == 6 == info.n_instances
    assert {r.split(",")[0] for r in rows} == {"onnx/mnist-net_256x2.onnx", "onnx/mnist-net_256x2_2.onnx"}
    with pytest.raises(BadInput, match="share input layout"):
        export_benchmark([net, model_path("mnist_relu_9_200")], mnist_data, eps=0.01, n=3, seed=0,
                         out=tmp_path / "c", timeout=10)


# --- bad input ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("kwargs", "message"), [
    ({"eps": -0.1}, "eps"), ({"eps": float("nan")}, "eps"), ({"n": 0}, "instances"), ({"timeout": 0}, "timeout"),
    ({"skip": "bogus"}, "skip"), ({"models": ["/nonexistent/net.onnx"]}, "not found"),
    ({"out": "/nonexistent/dir/bench"}, "does not exist"),
])
def test_bad_export_arguments(tmp_path: Path, mnist_data: Dataset, kwargs: dict, message: str) -> None:
    args = {"models": [model_path("mnist-net_256x2")], "data": mnist_data, "eps": 0.02, "n": 2, "seed": 0,
            "out": tmp_path / "b", "timeout": 60}
    args.update(kwargs)
    with pytest.raises(BadInput, match=message):
        export_benchmark(**args)
    assert not list(tmp_path.iterdir())


def test_existing_output_and_failed_export(tmp_path: Path, mnist_data: Dataset, monkeypatch) -> None:
    net, out = model_path("mnist-net_256x2"), tmp_path / "b"
    export_benchmark([net], mnist_data, eps=0.02, n=2, seed=0, out=out, timeout=60)
    before = _files(out)
    with pytest.raises(BadInput, match="already exists"):
        export_benchmark([net], mnist_data, eps=0.02, n=2, seed=1, out=out, timeout=60)

    def boom(*_a: object) -> str:
        raise RuntimeError("disk full")

    monkeypatch.setattr(export_mod, "_readme", boom)
    with pytest.raises(RuntimeError):
        export_benchmark([net], mnist_data, eps=0.02, n=2, seed=1, out=out, timeout=60, force=True)
    assert _files(out) == before and [p.name for p in tmp_path.iterdir()] == ["b"]  # old kept, no temp left
    with pytest.raises(RuntimeError):
        export_benchmark([net], mnist_data, eps=0.02, n=2, seed=1, out=tmp_path / "new", timeout=60)
    assert not (tmp_path / "new").exists()
    monkeypatch.undo()
    info = export_benchmark([net], mnist_data, eps=0.02, n=2, seed=1, out=out, timeout=60, force=True)
    assert _files(out) != before and (out / info.properties[0]).is_file()


def test_unlabelled_data_is_rejected(tmp_path: Path, mnist_data: Dataset) -> None:
    data = Dataset(mnist_data.x, None, "x.npy")
    with pytest.raises(BadInput, match="no labels"):
        export_benchmark([model_path("mnist-net_256x2")], data, 0.02, 2, 0, tmp_path / "b", 60)


# --- readers and writers -----------------------------------------------------------------------------------

def test_real_vnncomp_examples_read_correctly() -> None:
    for eps in (0.03, 0.05):
        p = read_vnnlib(EXAMPLES / "mnistfc" / f"prop_0_{eps}.vnnlib")
        assert (p.n_inputs, p.n_classes, p.label) == (784, 10, 8)
        assert np.isclose((p.upper - p.lower).max() / 2, eps, atol=1e-7)  # half-width of the box is eps
        assert p.lower.min() == 0 and p.upper.max() == 1
    r = read_vnnlib(EXAMPLES / "cifar10_resnet" / "resnet2b_prop_0_eps_0.008.vnnlib")
    assert (r.n_inputs, r.n_classes, r.label) == (3072, 10, 2)
    assert r.lower[0] == 1.3441094160079956 and r.upper[0] == 1.4075908660888672
    ex = read_vnnlib2(EXAMPLES / "vnnlib2" / "mnist-net_256x2_img0_eps0.02.vnnlib")
    data = _data("mnist-net_256x2", "eran_mnist_test.csv", n=1)
    ours = Property.linf_ball(data.x[0], 0.02, int(data.y[0]), 10)
    assert ex.label == ours.label == 7
    # the example computed pixel/255 - eps in float64, we from the float32 pixel: equal to float32 rounding
    assert np.allclose(ex.lower, ours.lower, rtol=0, atol=1e-6) and np.allclose(ex.upper, ours.upper, rtol=0, atol=1e-6)
    assert np.array_equal(ex.lower == 0, ours.lower == 0)


def test_versions_are_told_apart() -> None:
    with pytest.raises(BadInput, match=r"mnist-net_256x2_img0_eps0.02.vnnlib:2: this is a VNN-LIB 2.0 file"):
        read_vnnlib(EXAMPLES / "vnnlib2" / "mnist-net_256x2_img0_eps0.02.vnnlib")
    with pytest.raises(BadInput, match="prop_0_0.03.vnnlib: not a valid VNN-LIB 2.0"):
        read_vnnlib2(EXAMPLES / "mnistfc" / "prop_0_0.03.vnnlib")


def _random_property(seed: int, n_in: int, n_classes: int) -> Property:
    rng = np.random.default_rng(seed)
    lo = rng.normal(size=n_in).astype(np.float32) * np.float32(10.0) ** rng.integers(-9, 3, n_in)
    hi = lo + rng.uniform(0, 1, n_in).astype(np.float32)
    return Property(lo, hi, int(rng.integers(n_classes)), n_classes)


@pytest.mark.parametrize(("seed", "shape", "classes"), [(0, (1, 6), 2), (1, (1, 2, 3, 4), 10), (2, (7,), 3)])
def test_round_trip_is_exact(tmp_path: Path, seed: int, shape: tuple[int, ...], classes: int) -> None:
    prop = _random_property(seed, int(np.prod(shape)), classes)
    write_vnnlib(tmp_path / "p.vnnlib", prop)
    write_vnnlib2(tmp_path / "p2.vnnlib", prop, shape, (1, classes))
    p1, p2 = read_vnnlib(tmp_path / "p.vnnlib"), read_vnnlib2(tmp_path / "p2.vnnlib")
    assert p1.same_as(prop) and p2.same_as(prop)
    numbers = re.findall(r"[\s(](-?[\d.][^\s()]*)", vnnlib_text(prop) + vnnlib2_text(prop, shape, (1, classes)))
    assert numbers and all(re.fullmatch(r"-?\d+\.\d+", t) for t in numbers if "." in t)  # no exponents
    with pytest.raises(BadInput, match="elements"):
        vnnlib2_text(prop, (1, 5), (1, classes))


GOOD = "(declare-const X_0 Real)\n(declare-const Y_0 Real)\n(declare-const Y_1 Real)\n" \
       "(assert (<= X_0 1.0))\n(assert (>= X_0 -0.5))\n"


@pytest.mark.parametrize(("text", "message"), [
    (GOOD + "(assert (or (and (>= Y_1 Y_0))\n", r"m.vnnlib:6: '\(' is never closed"),
    (GOOD + "(assert (<= Y_0 3.5))\n", "m.vnnlib:6: non-standard output constraint"),
    (GOOD + "(assert (>= Y_1 Y_0))\n(assert (>= Y_0 Y_1))\n", "m.vnnlib:7: a second output constraint"),
    (GOOD + "(assert (or (and (>= Y_2 Y_0))))\n", "m.vnnlib:6: Y_2 is used but not declared"),
    (GOOD.replace("(assert (>= X_0 -0.5))\n", "") + "(assert (>= Y_1 Y_0))\n", "X_0 has no lower bound"),
    (GOOD + "(assert (>= Y_1 Y_0)))\n", r"m.vnnlib:6: unmatched '\)'"),
    (GOOD.replace("Real)\n(declare-const Y_0", "Int)\n(declare-const Y_0"), "m.vnnlib:1: expected"),
    (GOOD + "(assert (or (and (>= X_0 0.2) (>= Y_1 Y_0))))\n", "m.vnnlib:6: non-standard output"),
    (GOOD, "no output constraint"),
])
def test_malformed_vnnlib_names_file_and_line(tmp_path: Path, text: str, message: str) -> None:
    (tmp_path / "m.vnnlib").write_text(text)
    with pytest.raises(BadInput, match=message):
        read_vnnlib(tmp_path / "m.vnnlib")


def test_reader_accepts_vnncomp_variants() -> None:
    base = "; c\n(declare-const X_0 Real)\n(declare-const X_1 Real)\n" + "".join(
        f"(declare-const Y_{j} Real)\n" for j in range(3))
    box = "(assert (and (<= X_0 1) (>= X_0 (- 0.5)) (<= 0.25 X_1) (<= X_1 0.75)))\n"
    for out in ("(assert (or (and (>= Y_0 Y_2)) (and (<= Y_2 Y_1))))", "(assert (or (>= Y_0 Y_2) (> Y_1 Y_2)))"):
        p = parse_vnnlib(base + box + out)
        assert p.label == 2 and p.lower.tolist() == [-0.5, 0.25] and p.upper.tolist() == [1.0, 0.75]


def test_vnnlib2_rejects_bad_files(tmp_path: Path) -> None:
    prop = _random_property(5, 4, 3)
    text = vnnlib2_text(prop, (1, 4), (1, 3))
    first = text.splitlines()[6]
    assert first.startswith("(assert (>= X[0,0] ")
    with pytest.raises(BadInput, match="t.vnnlib: not a valid VNN-LIB 2.0 robustness file: line 7"):
        parse_vnnlib2(text.replace(first, "(assert (>= X[0,0] 0))"), "t.vnnlib")  # int literal for a float32
    with pytest.raises(BadInput, match="non-standard output"):
        parse_vnnlib2(text.split("(assert (or")[0] + "(assert (<= Y[0,0] 3.0))\n")
    with pytest.raises(BadInput, match="not found"):
        read_vnnlib2(tmp_path / "missing.vnnlib")


def test_attacked_images_are_skipped(tmp_path: Path, mnist_data: Dataset) -> None:
    pytest.importorskip("graftonnx.torch_bridge")
    net = model_path("mnist-net_256x2")
    correct = export_benchmark([net], mnist_data, eps=0.05, n=100, seed=0, out=tmp_path / "m", timeout=60)
    info = export_benchmark([net], mnist_data, eps=0.05, n=10, seed=0, out=tmp_path / "a", timeout=60,
                            skip="attacked")
    assert info.n_properties == 10 and info.skipped_attacked > 0
    # the kept images are the correctly classified ones in the same seeded order, minus the attacked ones
    span = correct.indices[: correct.indices.index(info.indices[-1]) + 1]
    assert [i for i in span if i in info.indices] == list(info.indices)
    assert len(span) - len(info.indices) == info.skipped_attacked


# --- CLI ---------------------------------------------------------------------------------------------------

def test_cli_export(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from graftonnx.cli import main

    net, data = str(model_path("mnist-net_256x2")), str(DATASETS / "eran_mnist_test.csv")
    base = ["export", net, "--data", data, "--eps", "0.02", "--instances", "4", "--seed", "1", "--timeout", "30"]
    res = CliRunner().invoke(main, [*base, "-o", str(tmp_path / "b"), "--json"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["properties"] == 4 and summary["instances"] == 4 and summary["timeout"] == 30
    assert len((tmp_path / "b" / "instances.csv").read_text().splitlines()) == 4
    bad = {
        "already exists": [*base, "-o", str(tmp_path / "b")],
        "eps": ["export", net, "--data", data, "--eps", "-0.1", "-o", str(tmp_path / "c")],
        "needs labelled images": ["export", net, "--eps", "0.1", "-o", str(tmp_path / "c")],
        "not found": ["export", str(tmp_path / "nope.onnx"), "--data", data, "--eps", "0.1", "-o", str(tmp_path / "c")],
    }
    for message, args in bad.items():
        res = CliRunner().invoke(main, args)
        assert res.exit_code == 2 and message in res.output, (message, res.output)
        assert "Traceback" not in res.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]
