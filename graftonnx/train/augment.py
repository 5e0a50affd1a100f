"""Seeded batch augmentation: pad-and-crop shifts, horizontal flips, uniform noise within ε.

Why: distilling from the original network needs no labels, so a few hundred images can
recover accuracy, but only if each epoch shows them differently.  Every draw comes from
the epoch's CPU generator (seeded by ``(seed, epoch)``, like shuffling and the attack
noise), in a fixed order, so a resumed run sees exactly the batches an uninterrupted one
would.  Flips are an explicit choice (``--flip``): they are right for natural images and
wrong for digits, so nothing turns them on by default.

Layout: the spatial axes are the last two of a channels-first sample ``(C, H, W)`` or the
first two of a channels-last ``(H, W, C)`` (``channel_axis``); a flat MNIST vector (784 or
784×1) is treated as its 28×28 image.  Other shapes cannot be cropped or flipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..errors import BadInput

__all__ = ["Augmenter", "augmenter_for"]


@dataclass(frozen=True)
class Augmenter:
    """Augments a batch of samples of ``sample_shape``; ``image`` is its (C, H, W) view, ``channels_last`` its order."""

    sample_shape: tuple[int, ...]
    image: tuple[int, int, int] | None
    channels_last: bool
    crop_pad: int
    flip: bool
    noise: float  # half-width of the uniform noise (0 = none)

    @property
    def active(self) -> bool:
        return bool(self.crop_pad or self.flip or self.noise)

    def __call__(self, x: torch.Tensor, lo: float, hi: float, gen: torch.Generator) -> torch.Tensor:
        """The augmented CPU batch (same shape); draws from ``gen`` only for the enabled augmentations."""
        if not self.active:
            return x
        n = len(x)
        if self.image is not None and (self.crop_pad or self.flip):
            img = self._to_image(x)
            if self.crop_pad:
                img = _shift(img, self.crop_pad, gen)
            if self.flip:
                flip = torch.rand(n, generator=gen) < 0.5
                img = torch.where(flip.view(n, 1, 1, 1), img.flip(-1), img)
            x = self._from_image(img)
        if self.noise:
            x = (x + (torch.rand(x.shape, generator=gen) * 2 - 1) * self.noise).clamp(lo, hi)
        return x

    def _to_image(self, x: torch.Tensor) -> torch.Tensor:
        c, h, w = self.image  # type: ignore[misc]
        return x.reshape(len(x), h, w, c).permute(0, 3, 1, 2) if self.channels_last else x.reshape(len(x), c, h, w)

    def _from_image(self, img: torch.Tensor) -> torch.Tensor:
        out = img.permute(0, 2, 3, 1) if self.channels_last else img
        return out.reshape(len(img), *self.sample_shape).contiguous()


def _shift(img: torch.Tensor, pad: int, gen: torch.Generator) -> torch.Tensor:
    """Zero-pad by ``pad`` and crop each image back at its own random offset in ``[0, 2·pad]²``."""
    n, _, h, w = img.shape
    padded = F.pad(img, (pad, pad, pad, pad))
    offs = torch.randint(0, 2 * pad + 1, (n, 2), generator=gen)
    return torch.stack([padded[i, :, dy:dy + h, dx:dx + w] for i, (dy, dx) in enumerate(offs.tolist())])


def _image_view(shape: tuple[int, ...], channel_axis: int) -> tuple[tuple[int, int, int] | None, bool]:
    dims = [d for d in shape if d != 1]
    if len(dims) == 1 and math.isqrt(dims[0]) ** 2 == dims[0] and dims[0] >= 4:  # a flat grey image
        side = math.isqrt(dims[0])
        return (1, side, side), False
    if len(shape) == 3:
        last = channel_axis % 3 == 2
        c, h, w = (shape[2], shape[0], shape[1]) if last else shape
        return (c, h, w), last
    if len(shape) == 2:
        return (1, shape[0], shape[1]), False
    return None, False


def augmenter_for(sample_shape: tuple[int, ...], channel_axis: int, crop_pad: int, flip: bool,
                  noise: float) -> Augmenter:
    """The augmenter for samples of ``sample_shape``; BadInput when crops or flips cannot apply to it."""
    image, last = _image_view(tuple(sample_shape), channel_axis)
    if (crop_pad or flip) and image is None:
        raise BadInput(f"--crop-pad/--flip need image-shaped samples (C,H,W, H,W,C or a flat square image); "
                       f"these are {tuple(sample_shape)}: drop the option")
    if image is not None and crop_pad >= min(image[1], image[2]):
        raise BadInput(f"--crop-pad {crop_pad} is not smaller than the {image[1]}×{image[2]} image: use a few pixels")
    return Augmenter(tuple(sample_shape), image, last, crop_pad, flip, noise)
