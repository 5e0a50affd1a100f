"""Write the hardening corpus: small bad models, datasets, benchmark folders and manifests.

Why generated: the binary cases (ONNX, .npz) must stay reproducible and reviewable, so
this script is the source of truth and ``tests/test_hardening.py`` checks that running
it again gives byte-identical files.  Run ``python tests/bad_inputs/make_corpus.py``.
"""

from __future__ import annotations

import io
import sys
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["write_corpus", "tiny_model"]

HERE = Path(__file__).resolve().parent
N_IN, N_HID, N_OUT = 8, 6, 3


def _init(name: str, shape: tuple[int, ...], seed: int) -> onnx.TensorProto:
    rng = np.random.default_rng(seed)
    return numpy_helper.from_array(rng.standard_normal(shape).astype(np.float32), name)


def _model(nodes: list[onnx.NodeProto], inits: list[onnx.TensorProto], inputs: list[onnx.ValueInfoProto] | None = None,
           out_dims: tuple[object, ...] = ("N", N_OUT)) -> onnx.ModelProto:
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", N_IN])]
    graph = helper.make_graph(nodes, "g", inputs, [helper.make_tensor_value_info("y", TensorProto.FLOAT,
                                                                                 list(out_dims))], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], producer_name="make_corpus")
    model.ir_version = 8
    return model


def tiny_model(hidden_op: str = "Relu") -> onnx.ModelProto:
    """x[N,8] → Gemm → ``hidden_op`` → Gemm → y[N,3]: the valid base every bad model is derived from."""
    nodes = [helper.make_node("Gemm", ["x", "W1", "b1"], ["h"], name="fc1", transB=1),
             helper.make_node(hidden_op, ["h"], ["a"], name="act"),
             helper.make_node("Gemm", ["a", "W2", "b2"], ["y"], name="fc2", transB=1)]
    inits = [_init("W1", (N_HID, N_IN), 1), _init("b1", (N_HID,), 2), _init("W2", (N_OUT, N_HID), 3),
             _init("b2", (N_OUT,), 4)]
    return _model(nodes, inits)


def _control_flow(op: str) -> onnx.ModelProto:
    """The tiny net with its Relu output passed through an If / a Loop (a data-dependent graph)."""
    m = tiny_model()
    body_out = helper.make_tensor_value_info("a2", TensorProto.FLOAT, None)
    ident = helper.make_node("Identity", ["a"], ["a2"], name="id")
    if op == "If":
        branch = helper.make_graph([ident], "b", [], [body_out])
        cond = helper.make_node("Constant", [], ["c"], name="cond", value=numpy_helper.from_array(np.array(True)))
        node = helper.make_node("If", ["c"], ["a_cf"], name="if", then_branch=branch, else_branch=branch)
        extra = [cond]
    else:
        body = helper.make_graph([ident, helper.make_node("Identity", ["cond_in"], ["cond_out"], name="cid")], "b",
                                 [helper.make_tensor_value_info("i", TensorProto.INT64, []),
                                  helper.make_tensor_value_info("cond_in", TensorProto.BOOL, [])],
                                 [helper.make_tensor_value_info("cond_out", TensorProto.BOOL, []), body_out])
        trip = helper.make_node("Constant", [], ["t"], name="trip", value=numpy_helper.from_array(np.array(1)))
        node = helper.make_node("Loop", ["t", ""], ["a_cf"], name="loop", body=body)
        extra = [trip]
    nodes = list(m.graph.node)
    nodes[2].input[0] = "a_cf"
    del m.graph.node[:]
    m.graph.node.extend([*nodes[:2], *extra, node, nodes[2]])
    return m


def _bytes(m: onnx.ModelProto) -> bytes:
    return m.SerializeToString()


def _models() -> dict[str, bytes]:
    good = _bytes(tiny_model())
    ext = tiny_model()
    w1 = ext.graph.initializer[0]
    w1.data_location = TensorProto.EXTERNAL
    w1.ClearField("raw_data")
    w1.ClearField("float_data")
    w1.external_data.add(key="location", value="missing_weights.bin")
    dyn = _model(list(tiny_model().graph.node), list(tiny_model().graph.initializer),
                 [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", "features"])])
    two = tiny_model()
    two.graph.input.append(helper.make_tensor_value_info("x2", TensorProto.FLOAT, ["N", N_IN]))
    dangling = tiny_model()
    dangling.graph.node[1].input[0] = "nowhere"
    base = tiny_model()
    no_relu = _model([base.graph.node[0]], list(base.graph.initializer[:2]), out_dims=("N", N_HID))
    no_relu.graph.node[0].output[0] = "y"
    return {"model_truncated.onnx": good[: len(good) // 2], "model_empty.onnx": b"",
            "model_text.onnx": b"this is not an ONNX protobuf, just text\n",
            "model_external_missing.onnx": _bytes(ext), "model_unsupported_op.onnx": _bytes(tiny_model("Sin")),
            "model_if.onnx": _bytes(_control_flow("If")), "model_loop.onnx": _bytes(_control_flow("Loop")),
            "model_dynamic_dim.onnx": _bytes(dyn), "model_two_inputs.onnx": _bytes(two),
            "model_dangling_input.onnx": _bytes(dangling), "model_no_relu.onnx": _bytes(no_relu),
            "tiny_ok.onnx": good}


def _npz(**arrays: np.ndarray) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _datasets() -> dict[str, bytes]:
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (6, N_IN)).astype(np.float32)
    y = np.array([0, 1, 2, 0, 1, 2])
    nan = x.copy()
    nan[3, 2] = np.nan
    return {"data_wrong_shape.npz": _npz(x=rng.uniform(0, 1, (6, 5)).astype(np.float32), y=y),
            "data_nan.npz": _npz(x=nan, y=y), "data_labels_out_of_range.npz": _npz(x=x, y=np.array([0, 1, 7, 0, 1, 2])),
            "data_label_count.npz": _npz(x=x, y=y[:4]), "data_empty.npz": _npz(x=x[:0], y=y[:0]),
            "data_out_of_range.npz": _npz(x=x * 300 - 150, y=y),
            "data_ragged.csv": b"0,1,2,3,4,5,6,7,8\n1,1,2,3\n", "data_text_labels.csv": b"cat,1,2,3,4,5,6,7,8\n"}


_BOX = "".join(f"(assert (>= X_{i} 0.4))\n(assert (<= X_{i} 0.6))\n" for i in range(N_IN))
_DECL = "".join(f"(declare-const X_{i} Real)\n" for i in range(N_IN)) + \
    "".join(f"(declare-const Y_{j} Real)\n" for j in range(N_OUT))
GOOD_VNNLIB = _DECL + _BOX + "(assert (or (and (>= Y_1 Y_0)) (and (>= Y_2 Y_0))))\n"


def _benches() -> dict[str, bytes]:
    """Benchmark folders ``bench_<case>/`` (instances.csv + vnnlib/ + onnx/tiny_ok.onnx written by the test)."""
    row = "onnx/tiny_ok.onnx,vnnlib/p.vnnlib,10\n"
    cases = {"bench_header": ("onnx,vnnlib,timeout\n" + row, GOOD_VNNLIB),
             "bench_missing_file": ("onnx/tiny_ok.onnx,vnnlib/absent.vnnlib,10\n", GOOD_VNNLIB),
             "bench_columns": ("onnx/tiny_ok.onnx,vnnlib/p.vnnlib\n", GOOD_VNNLIB),
             "bench_negative_timeout": ("onnx/tiny_ok.onnx,vnnlib/p.vnnlib,-5\n", GOOD_VNNLIB),
             "bench_empty": ("\n", GOOD_VNNLIB),
             "bench_vnnlib_parens": (row, GOOD_VNNLIB[:-3]),
             "bench_vnnlib_undeclared": (row, GOOD_VNNLIB.replace("(declare-const X_3 Real)\n", "")),
             "bench_vnnlib_garbage": (row, "(this is (not vnnlib\n")}
    out = {}
    for name, (csv, vnn) in cases.items():
        out[f"{name}/instances.csv"] = csv.encode()
        out[f"{name}/vnnlib/p.vnnlib"] = vnn.encode()
    return out


def _manifests() -> dict[str, bytes]:
    m = "models:\n  - path: tiny_ok.onnx\n    data: {source: data_ok.npz}\n"
    return {"manifest_yaml_syntax.yaml": b"models:\n  - path: [tiny_ok.onnx\n",
            "manifest_unknown_key.yaml": (m + "    ratio: 0.5\n").encode(),
            "manifest_wrong_type.yaml": (m + "    eps: big\n").encode(),
            "manifest_no_path.yaml": b"models:\n  - name: a\n",
            "manifest_bad_backend.yaml": (m + "    verify: {backend: z3}\n").encode(),
            "manifest_not_mapping.yaml": b"- just\n- a list\n"}


def corpus() -> dict[str, bytes]:
    """Every corpus file, relative path → bytes."""
    x = np.random.default_rng(1).uniform(0, 1, (6, N_IN)).astype(np.float32)
    ok = {"data_ok.npz": _npz(x=x, y=np.array([0, 1, 2, 0, 1, 2]))}
    return _models() | _datasets() | _benches() | _manifests() | ok


def write_corpus(root: Path = HERE) -> list[Path]:
    paths = []
    for rel, data in corpus().items():
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        paths.append(p)
    return paths


if __name__ == "__main__":
    print(f"wrote {len(write_corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE))} files")
