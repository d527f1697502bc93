"""Area-averaged resizing as matrix products: `rows @ image @ cols.T` with the weights below.

Used where many small frames are shrunk the same way (the motion localizer's previews, the dedup fingerprint's
crop windows): the weights are computed once per geometry, and each frame then costs two small products instead
of a swscale call from Python.
"""

from __future__ import annotations

import numpy as np


def area_weights(start: float, stop: float, n_out: int, n_in: int) -> np.ndarray:
    """(n_out, n_in) weights averaging [start, stop) of an axis (fractional pixels) into n_out equal cells."""
    edges = np.linspace(start, stop, n_out + 1)
    lo, hi = edges[:-1, None], edges[1:, None]
    pix = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, pix + 1) - np.maximum(lo, pix), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)
