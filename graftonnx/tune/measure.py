"""What ``tune`` measures of one candidate network: SA on held-out images, UNR and VA on an ε-ball sample.

Why these three and this way: the user's constraint is clean accuracy (SA, on images the
candidate never trained on), the goal is verified accuracy (VA: the share of the sample's
ε-balls a lirpa bound proves, misclassified images counting as not verified, as in the
paper), and UNR says why.  VA is measured on the *verifier-ready* form that ``export``
writes (:func:`graftonnx.rewrite.native.native_form`), with the normalisation folded in
front, so the number is the one a benchmark built from the chosen graft would start from.
Every candidate sees the same split and the same sample (both seeded), so differences
between candidates are differences between networks.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass

import numpy as np
import onnx

from .. import api
from ..bench.spec import Property
from ..data.dataset import Dataset
from ..device import resolve
from ..errors import BadInput
from ..model.graftmeta import read_grafts
from ..model.transform import prepend_normalisation
from ..rewrite.native import native_form

__all__ = ["Split", "Measure", "split_data", "sample_properties", "measure", "check_labelled"]


@dataclass(frozen=True)
class Split:
    """``train`` scores and finetunes; ``heldout`` gives SA and (its first images) the VA sample."""

    train: Dataset
    heldout: Dataset


@dataclass(frozen=True)
class Measure:
    """SA (held out) and VA (sample) in percent; UNR = unstable ReLUs per image on the sample (IBP)."""

    sa: float
    va: float
    unr: float
    n_heldout: int
    n_verify: int
    bound_seconds: float

    def to_dict(self) -> dict[str, float]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def _part(data: Dataset, idx: np.ndarray) -> Dataset:
    y = None if data.y is None else data.y[idx]
    return Dataset(data.x[idx], y, data.source, data.input_range, data.mean, data.std, data.channel_axis,
                   data.synthetic, dict(data.meta))


def check_labelled(data: Dataset, flag: str = "--data") -> None:
    if data.y is None or data.synthetic:
        raise BadInput(f"tune needs labelled images (SA and VA are measured on them): {flag} {data.source} has "
                       "no labels; pass a labelled dataset such as mnist5k or a labelled csv/npz")


def split_data(data: Dataset, heldout: float, seed: int) -> Split:
    """A seeded split: ``round(heldout·n)`` images held out (at least one on each side)."""
    check_labelled(data)
    n_out = int(round(heldout * len(data)))
    if len(data) < 2 or not 1 <= n_out < len(data):
        raise BadInput(f"--data {data.source} has {len(data)} images: too few to hold out {heldout:.0%} "
                       "and train on the rest; give more images or change --heldout")
    order = np.random.default_rng(seed + 104729).permutation(len(data))
    return Split(_part(data, np.sort(order[n_out:])), _part(data, np.sort(order[:n_out])))


def sample_properties(heldout: Dataset, n: int, eps: float, n_classes: int) -> list[Property]:
    """The ε-balls (pixel space, clipped to the input range) of the first ``n`` held-out images."""
    assert heldout.y is not None
    k = min(n, len(heldout))
    return [Property.linf_ball(heldout.x[i].ravel(), eps, int(heldout.y[i]), n_classes, heldout.input_range)
            for i in range(k)]


def _verified(model: onnx.ModelProto, data: Dataset, props: list[Property], method: str, device: str
              ) -> tuple[int, float]:
    from ..verify.backends.lirpa import certified_margin, verification_model

    ready = native_form(model)[0] if read_grafts(model) else model
    net = verification_model(prepend_normalisation(ready, data.mean, data.std, data.channel_axis), resolve(device))
    t0 = time.perf_counter()
    proved = sum(certified_margin(net, p, method) > 0 for p in props)
    return int(proved), time.perf_counter() - t0


def measure(model: onnx.ModelProto, split: Split, props: list[Property], eps: float, method: str,
            device: str = "auto") -> Measure:
    """SA, VA and UNR of ``model`` (mask or verifier-ready form) on the split and the sample."""
    sa = api.accuracy(model, split.heldout)
    assert sa is not None  # split_data requires labels
    proved, seconds = _verified(model, split.heldout, props, method, device)
    unr = sum(api.unr(model, split.heldout.take(len(props)), eps, "ibp").values())
    return Measure(100.0 * sa, 100.0 * proved / len(props), float(unr), len(split.heldout), len(props), seconds)
