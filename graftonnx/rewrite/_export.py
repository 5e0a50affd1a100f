"""Export an edited onnx-graphsurgeon graph so it looks like the model it came from.

Every rewrite pass ends the same way: clean up and sort the graph, export it, restore
what graphsurgeon does not carry (IR version, opset imports, producer, doc string, the
declared output ValueInfo) and the metadata, then run the full onnx.checker.
"""

from __future__ import annotations

from collections.abc import Mapping

import onnx
import onnx_graphsurgeon as gs

from ..model.graftmeta import set_metadata

__all__ = ["export_like"]


def export_like(graph: gs.Graph, original: onnx.ModelProto, metadata: Mapping[str, str], what: str) -> onnx.ModelProto:
    """``graph`` exported with ``original``'s envelope and ``metadata`` as its metadata_props."""
    graph.cleanup().toposort()
    out = gs.export_onnx(graph, do_type_check=True)
    out.ir_version = original.ir_version
    del out.opset_import[:]
    out.opset_import.extend(original.opset_import)
    out.producer_name, out.producer_version = original.producer_name, original.producer_version
    out.doc_string, out.domain, out.model_version = original.doc_string, original.domain, original.model_version
    set_metadata(out, metadata)
    # keep the declared output shapes exactly as they were (graphsurgeon may re-infer them)
    for old_vi, new_vi in zip(list(original.graph.output), list(out.graph.output), strict=True):
        new_vi.CopyFrom(old_vi)
    try:
        onnx.checker.check_model(out, full_check=True)
    except Exception as exc:  # pragma: no cover - a bug in a pass, not user input
        raise RuntimeError(f"{what} model fails onnx.checker: {exc}") from exc
    return out
