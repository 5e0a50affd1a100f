"""Datasets stage: every format, layout conversion by hand-computed pixel positions,
accuracy of the shared nets on the shared images, and every validation error."""

from __future__ import annotations

import gzip
import pickle
import struct
import warnings
from functools import cache
from pathlib import Path

import click
import numpy as np
import onnx
import pytest
from click.testing import CliRunner
from conftest import model_path
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import TensorProto, helper, numpy_helper

from graftonnx.cli._base import GraftGroup
from graftonnx.cli._data_options import DATA_OPTION_NAMES, data_options, load_from_options, spec_from_options
from graftonnx.data import DATA_FORMATS, DataSpec, RawImages, SyntheticDataWarning, load_dataset
from graftonnx.data.layout import to_model_layout
from graftonnx.errors import BadInput
from graftonnx.model import OrtRunner, inspect_model, load_model, prepend_normalisation

CIFAR_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR_STD = (0.2471, 0.2435, 0.2616)


@cache
def _model(name: str) -> onnx.ModelProto:
    return load_model(model_path(name))


@cache
def _info(name: str):
    return inspect_model(_model(name))


def _tiny(shape: tuple[int, ...], classes: int = 10):
    """A small Flatten→Gemm→Relu→Gemm classifier with per-sample input ``shape``."""
    d = int(np.prod(shape))
    rng = np.random.default_rng(0)
    inits = [numpy_helper.from_array(rng.normal(size=(8, d)).astype(np.float32), "w1"),
             numpy_helper.from_array(np.zeros(8, np.float32), "b1"),
             numpy_helper.from_array(rng.normal(size=(classes, 8)).astype(np.float32), "w2"),
             numpy_helper.from_array(np.zeros(classes, np.float32), "b2")]
    nodes = [helper.make_node("Flatten", ["x"], ["f"], name="flat", axis=1),
             helper.make_node("Gemm", ["f", "w1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node("Relu", ["h"], ["r"], name="relu1"),
             helper.make_node("Gemm", ["r", "w2", "b2"], ["y"], name="fc2", transB=1)]
    graph = helper.make_graph(nodes, "tiny", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, *shape])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, classes])], inits)
    return inspect_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)]))


def _rows(csv: Path) -> np.ndarray:
    return np.loadtxt(csv, delimiter=",")


def _accuracy(name: str, ds) -> float:
    m = prepend_normalisation(_model(name), ds.mean, ds.std, ds.channel_axis)
    return float((OrtRunner(m).logits(ds.x).argmax(1) == ds.y).mean())


def _bad(match: str, *args, **kwargs) -> str:
    with pytest.raises(BadInput, match=match) as exc:
        load_dataset(*args, **kwargs)
    assert "\n" not in exc.value.message
    return exc.value.message


# --- registry and the real shared data ---------------------------------------------------------------------------

def test_registry_holds_every_format():
    assert set(DATA_FORMATS.keys()) >= {"npz", "npy", "eran-csv", "idx", "cifar", "digits", "mnist5k"}
    with pytest.raises(BadInput, match="'tiff' is not one of"):
        load_dataset("x.tiff", _info("mnist-net_256x2"), DataSpec(format="tiff"))


@pytest.mark.parametrize("net,csv,acc,norm", [
    ("mnist-net_256x2", "mnist", 1.00, False), ("mnist_relu_9_200", "mnist", 0.97, False),
    ("resnet_2b", "cifar", 0.77, True), ("cifar10_small", "cifar", 0.61, False)])
def test_shared_accuracy_matches_sources(net, csv, acc, norm, mnist_csv, cifar_csv):
    spec = DataSpec(mean=CIFAR_MEAN, std=CIFAR_STD) if norm else DataSpec()
    ds = load_dataset(str(mnist_csv if csv == "mnist" else cifar_csv), _info(net), spec)
    assert len(ds) == 100 and ds.y.dtype == np.int64 and ds.x.dtype == np.float32
    assert ds.x.shape[1:] == _info(net).input.sample_shape
    assert ds.x.min() >= 0.0 and ds.x.max() <= 1.0 and ds.x.max() > 0.9   # raw pixels, not normalised
    assert _accuracy(net, ds) == pytest.approx(acc)


def test_mnist_csv_flat_and_nchw_positions(mnist_csv):
    rows = _rows(mnist_csv)
    flat = load_dataset(str(mnist_csv), _info("mnist-net_256x2"), DataSpec())
    img = load_dataset(str(mnist_csv), _info("mnist_relu_9_200"), DataSpec())
    for i, r, c in [(0, 7, 9), (3, 14, 14), (99, 20, 5)]:
        want = rows[i, 1 + r * 28 + c] / 255
        assert flat.x[i, r * 28 + c, 0] == pytest.approx(want)
        assert img.x[i, 0, r, c] == pytest.approx(want)
    np.testing.assert_array_equal(flat.y, rows[:, 0].astype(np.int64))


def test_cifar_csv_pixel_positions(cifar_csv):
    rows = _rows(cifar_csv)
    nchw = load_dataset(str(cifar_csv), _info("resnet_2b"), DataSpec(mean=CIFAR_MEAN, std=CIFAR_STD))
    nhwc = load_dataset(str(cifar_csv), _info("cifar10_small"), DataSpec())
    assert nchw.channel_axis == 0 and nhwc.channel_axis == 2 and nhwc.mean is None
    assert nchw.mean == CIFAR_MEAN and nchw.std == CIFAR_STD
    for i, r, c, k in [(0, 0, 0, 0), (0, 0, 1, 2), (5, 17, 3, 1), (99, 31, 30, 2)]:
        want = rows[i, 1 + (r * 32 + c) * 3 + k] / 255
        assert nchw.x[i, k, r, c] == pytest.approx(want)
        assert nhwc.x[i, r, c, k] == pytest.approx(want)


def test_layout_override_and_n(mnist_csv):
    info = _info("mnist_relu_9_200")
    flat = load_dataset(str(mnist_csv), info, DataSpec(layout="flat", n=7))
    auto = load_dataset(str(mnist_csv), info, DataSpec(n=7))
    assert len(flat) == 7 and flat.meta["layout"] == "flat" and auto.meta["layout"] == "nchw"
    np.testing.assert_array_equal(flat.x, auto.x)   # one channel: the same row-major pixels
    _bad("--layout nhwc needs a 3-axis", str(mnist_csv), _info("mnist-net_256x2"), DataSpec(layout="nhwc"))


# --- file formats made here ----------------------------------------------------------------------------------------

def _mnist_like(n: int = 6) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8), np.arange(n, dtype=np.uint8) % 10


@pytest.mark.parametrize("keys", [("x", "y"), ("images", "labels"), ("arr_0", "arr_1")])
def test_npz(tmp_path, keys):
    x, y = _mnist_like()
    p = tmp_path / "d.npz"
    if keys[0] == "arr_0":
        np.savez(p, x, y)
    else:
        np.savez(p, **{keys[0]: x, keys[1]: y})
    ds = load_dataset(str(p), _info("mnist-net_256x2"), DataSpec())
    assert ds.meta["format"] == "npz" and ds.x.shape == (6, 784, 1)
    assert ds.x[2, 5 * 28 + 11, 0] == pytest.approx(x[2, 5, 11] / 255)
    np.testing.assert_array_equal(ds.y, y.astype(np.int64))


def test_npy_plain_and_dict(tmp_path):
    x, y = _mnist_like()
    np.save(tmp_path / "x.npy", x.astype(np.float32) / 255)           # already [0, 1]: auto scale keeps it
    ds = load_dataset(str(tmp_path / "x.npy"), _info("mnist_relu_9_200"), DataSpec())
    assert ds.y is None and ds.meta["scale"] == "1/1"
    assert ds.x[4, 0, 27, 3] == pytest.approx(x[4, 27, 3] / 255)
    np.save(tmp_path / "d.npy", {"x": x.reshape(6, 784), "y": y}, allow_pickle=True)
    ds = load_dataset(str(tmp_path / "d.npy"), _info("mnist_relu_9_200"), DataSpec())
    np.testing.assert_array_equal(ds.y, y)
    assert ds.x[4, 0, 27, 3] == pytest.approx(x[4, 27, 3] / 255)


class _Evil:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_npy_pickle_runs_no_code(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "evil.npy"
    with open(p, "wb") as fh:
        np.lib.format.write_array_header_1_0(fh, {"descr": "|O", "fortran_order": False, "shape": ()})
        pickle.dump(_Evil(marker), fh)
    _bad("refusing to load", str(p), _info("mnist-net_256x2"), DataSpec())
    assert not marker.exists()
    np.save(tmp_path / "l.npy", np.array([[1, 2]], dtype=object), allow_pickle=True)
    _bad("only a dict with x", str(tmp_path / "l.npy"), _info("mnist-net_256x2"), DataSpec())


def _write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> None:
    data = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape) + arr.tobytes()
    path.write_bytes(gzip.compress(data) if gz else data)


@pytest.mark.parametrize("gz", [False, True])
def test_idx_with_neighbouring_labels(tmp_path, gz):
    x, y = _mnist_like()
    sfx = ".gz" if gz else ""
    _write_idx(tmp_path / f"t10k-images-idx3-ubyte{sfx}", x, gz)
    _write_idx(tmp_path / f"t10k-labels-idx1-ubyte{sfx}", y, gz)
    ds = load_dataset(str(tmp_path / f"t10k-images-idx3-ubyte{sfx}"), _info("mnist_relu_9_200"), DataSpec())
    assert ds.meta["format"] == "idx" and ds.x.shape == (6, 1, 28, 28)
    assert ds.x[1, 0, 10, 20] == pytest.approx(x[1, 10, 20] / 255)
    np.testing.assert_array_equal(ds.y, y)


def test_idx_explicit_and_missing_labels(tmp_path):
    x, y = _mnist_like()
    _write_idx(tmp_path / "imgs.idx", x)
    _write_idx(tmp_path / "my-labels", y[::-1].copy())
    spec = DataSpec(labels=str(tmp_path / "my-labels"))
    ds = load_dataset(str(tmp_path / "imgs.idx"), _info("mnist_relu_9_200"), spec)
    np.testing.assert_array_equal(ds.y, y[::-1])
    with pytest.warns(UserWarning, match="without labels"):
        ds = load_dataset(str(tmp_path / "imgs.idx"), _info("mnist_relu_9_200"), DataSpec())
    assert ds.y is None
    _bad("labels file .* not found", str(tmp_path / "imgs.idx"), _info("mnist_relu_9_200"),
         DataSpec(labels=str(tmp_path / "nope")))


def test_cifar_batch_chw_planar(tmp_path):
    rng = np.random.default_rng(2)
    data = rng.integers(0, 256, size=(4, 3072), dtype=np.uint8)
    with open(tmp_path / "test_batch", "wb") as fh:
        pickle.dump({b"batch_label": b"test", b"data": data, b"labels": [3, 1, 4, 1]}, fh, protocol=2)
    nchw = load_dataset(str(tmp_path / "test_batch"), _info("resnet_2b"), DataSpec(mean=CIFAR_MEAN, std=CIFAR_STD))
    nhwc = load_dataset(str(tmp_path / "test_batch"), _info("cifar10_small"), DataSpec())
    assert nchw.meta["format"] == "cifar" and nchw.meta["source_layout"] == "chw"
    for i, r, c, k in [(0, 0, 0, 0), (1, 0, 1, 2), (3, 31, 7, 1)]:
        want = data[i, k * 1024 + r * 32 + c] / 255
        assert nchw.x[i, k, r, c] == pytest.approx(want)
        assert nhwc.x[i, r, c, k] == pytest.approx(want)
    np.testing.assert_array_equal(nchw.y, [3, 1, 4, 1])


def test_builtin_digits():
    info = _tiny((1, 8, 8))
    ds = load_dataset("digits", info, DataSpec(n=50))
    from sklearn.datasets import load_digits

    d = load_digits()
    assert ds.meta["scale"] == "1/16" and ds.x.max() == pytest.approx(1.0) and len(ds) == 50
    assert ds.x[9, 0, 2, 5] == pytest.approx(d.images[9, 2, 5] / 16)
    flat = load_dataset("digits", _tiny((64,)), DataSpec(n=50))
    assert flat.x[9, 2 * 8 + 5] == pytest.approx(d.images[9, 2, 5] / 16)
    np.testing.assert_array_equal(ds.y, d.target[:50])


def test_builtin_mnist5k_balanced_and_accurate():
    ds = load_dataset("mnist5k", _info("mnist-net_256x2"), DataSpec(n=500))
    assert sorted(ds.y[:10].tolist()) == list(range(10))
    assert np.bincount(ds.y).tolist() == [50] * 10
    assert ds.meta["samples_in_source"] == "5000"
    assert _accuracy("mnist-net_256x2", ds) > 0.95


def test_synthetic_warns_and_is_seeded():
    info = _info("resnet_2b")
    with pytest.warns(SyntheticDataWarning, match="real images"):
        a = load_dataset(None, info, DataSpec(input_range=(0.2, 0.4), seed=3, mean=CIFAR_MEAN, std=CIFAR_STD))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        b = load_dataset(None, info, DataSpec(input_range=(0.2, 0.4), seed=3, n=5))
    assert a.synthetic and a.y is None and a.x.shape == (100, 3, 32, 32) and a.mean == CIFAR_MEAN
    assert a.x.min() >= 0.2 and a.x.max() <= 0.4
    np.testing.assert_array_equal(a.x[:5], b.x)


def test_scale_options(tmp_path):
    x, y = _mnist_like()
    np.savez(tmp_path / "d.npz", x=x.astype(np.float32), y=y)
    info = _info("mnist-net_256x2")
    ds = load_dataset(str(tmp_path / "d.npz"), info, DataSpec(scale="1", input_range=(0.0, 255.0)))
    assert ds.x.max() == x.max() and ds.input_range == (0.0, 255.0)
    assert load_dataset(str(tmp_path / "d.npz"), info, DataSpec(scale="255")).x.max() <= 1.0
    _bad(r"outside --input-range \[0, 1\]", str(tmp_path / "d.npz"), info, DataSpec(scale="1"))


# --- validation errors ---------------------------------------------------------------------------------------------

def test_missing_unreadable_unknown(tmp_path):
    info = _info("mnist-net_256x2")
    assert "mnist5k" in _bad("not found", str(tmp_path / "nope.npz"), info, DataSpec())
    _bad("is a directory", str(tmp_path), info, DataSpec())
    (tmp_path / "bad.npz").write_bytes(b"PK\x03\x04 this is not a zip")
    _bad("cannot read .*bad.npz as npz", str(tmp_path / "bad.npz"), info, DataSpec())
    (tmp_path / "junk.bin").write_bytes(b"\x01\x02\x03junk")
    _bad("cannot tell the format .*--data-format", str(tmp_path / "junk.bin"), info, DataSpec())
    (tmp_path / "text.csv").write_text("label,a,b\nx,y,z\n")
    _bad("cannot read .*text.csv as eran-csv", str(tmp_path / "text.csv"), info, DataSpec())


def test_empty(tmp_path):
    info = _info("mnist-net_256x2")
    (tmp_path / "e.csv").write_text("")
    _bad("is empty", str(tmp_path / "e.csv"), info, DataSpec())
    np.savez(tmp_path / "e.npz", x=np.zeros((0, 784)), y=np.zeros(0))
    _bad("holds no samples", str(tmp_path / "e.npz"), info, DataSpec())


def test_size_mismatch_names_both_shapes(mnist_csv):
    msg = _bad("each sample has 784 values", str(mnist_csv), _info("resnet_2b"), DataSpec())
    assert "(3, 32, 32)" in msg and "3072" in msg and str(mnist_csv) in msg


def test_nan_names_first_sample(tmp_path):
    x = np.full((6, 784), 0.5, np.float32)
    x[3, 10] = np.nan
    x[5, 0] = np.inf
    np.savez(tmp_path / "n.npz", x=x, y=np.zeros(6))
    _bad("sample 3 contains NaN or inf", str(tmp_path / "n.npz"), _info("mnist-net_256x2"), DataSpec())


def test_labels_out_of_range_and_count(tmp_path):
    x, y = _mnist_like()
    y = y.astype(np.int64)
    y[4] = 10
    np.savez(tmp_path / "l.npz", x=x, y=y)
    _bad(r"label 10 of sample 4 is outside \[0, 10\)", str(tmp_path / "l.npz"), _info("mnist-net_256x2"), DataSpec())
    np.savez(tmp_path / "c.npz", x=x, y=y[:3])
    _bad("6 images but 3 labels", str(tmp_path / "c.npz"), _info("mnist-net_256x2"), DataSpec())
    np.savez(tmp_path / "f.npz", x=x, y=np.full(6, 1.5))
    _bad("whole numbers", str(tmp_path / "f.npz"), _info("mnist-net_256x2"), DataSpec())


def test_mean_std_checks(cifar_csv, mnist_csv):
    _bad("--mean has 2 values .* 3 channel", str(cifar_csv), _info("resnet_2b"), DataSpec(mean=(0.5, 0.5)))
    _bad("--std has 3 values .* 1 channel", str(mnist_csv), _info("mnist-net_256x2"), DataSpec(std=(1, 1, 1)))
    _bad("value <= 0", str(cifar_csv), _info("resnet_2b"), DataSpec(std=(0.2, 0.0, 0.2)))
    with pytest.raises(BadInput, match="--n 0: must be at least 1"):  # rejected where the spec is made
        DataSpec(n=0)
    with pytest.raises(BadInput, match="LO < HI"):
        DataSpec(input_range=(1.0, 0.0))
    ds = load_dataset(str(cifar_csv), _info("resnet_2b"), DataSpec(mean=(0.5,), std=(0.25,), n=2))
    assert ds.mean == (0.5,) and ds.std == (0.25,)


# --- CLI options ---------------------------------------------------------------------------------------------------

def _cli():
    @click.group(cls=GraftGroup)
    def grp() -> None:
        pass

    @grp.command("probe")
    @click.argument("model")
    @data_options
    def probe(model: str, **kwargs) -> None:
        ds = load_from_options(_info(model), kwargs)
        click.echo(f"{ds.x.shape} {ds.mean} {ds.std} {ds.input_range} {ds.meta.get('format')}")

    return grp


def test_cli_options_roundtrip(cifar_csv):
    res = CliRunner().invoke(_cli(), ["probe", "resnet_2b", "--data", str(cifar_csv), "--n", "3",
                                      "--mean", "0.4914,0.4822,0.4465", "--std", "0.2471, 0.2435, 0.2616"])
    assert res.exit_code == 0, res.output
    assert "(3, 3, 32, 32) (0.4914, 0.4822, 0.4465) (0.2471, 0.2435, 0.2616) (0.0, 1.0) eran-csv" in res.output
    spec = spec_from_options(data="x", layout="nhwc", scale="255", input_range=(0.0, 2.0), seed=4, n=9,
                             data_format="npz", data_labels="l.npy", other_flag=True)
    assert spec == DataSpec(format="npz", layout="nhwc", scale="255", n=9, input_range=(0.0, 2.0), seed=4,
                            labels="l.npy", source="x")
    assert set(DATA_OPTION_NAMES) == {p.name for p in _cli().commands["probe"].params} - {"model"}


def test_cli_help_states_defaults():
    out = " ".join(CliRunner().invoke(_cli(), ["probe", "--help"]).output.split())
    for text in ("--data SOURCE", "Default: none", "--input-range LO HI", "default: 0.0, 1.0", "--data-format",
                 "default: auto", "--seed", "digits, mnist5k"):
        assert text in out, text


@pytest.mark.parametrize("args,msg", [
    (["--data", "nope.csv"], "not found"), (["--mean", "a,b"], "not a comma-separated list"),
    (["--data", "digits", "--mean", "0.1,0.2"], "--mean has 2 values")])
def test_cli_bad_input_exits_2(args, msg):
    res = CliRunner().invoke(_cli(), ["probe", "mnist-net_256x2", *args])
    assert res.exit_code == 2 and msg in res.output and "Traceback" not in res.output


# --- layout property -----------------------------------------------------------------------------------------------

@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 3), h=st.integers(1, 5), w=st.integers(1, 5), c=st.sampled_from([1, 3]))
def test_every_source_layout_gives_the_same_model_tensor(n, h, w, c):
    hwc = np.random.default_rng(n * 100 + h * 10 + w).random((n, h, w, c))
    sources = [RawImages(hwc, None, "hwc"), RawImages(hwc.transpose(0, 3, 1, 2), None, "chw"),
               RawImages(hwc.reshape(n, -1), None, "flat")]
    for raw in sources:
        np.testing.assert_array_equal(to_model_layout(raw, (c, h, w), "nchw", "t"), hwc.transpose(0, 3, 1, 2))
        np.testing.assert_array_equal(to_model_layout(raw, (h, w, c), "nhwc", "t"), hwc)
        np.testing.assert_array_equal(to_model_layout(raw, (h * w * c, 1), "flat", "t")[..., 0], hwc.reshape(n, -1))
