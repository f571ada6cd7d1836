"""A NumPy transcription of the permutohedral lattice the official F-CAM CRF loss filters with.

The official ``DenseCRFLoss`` (sbelharbi/fcam-wsol ``dlib/crf/dense_crf_loss.py:21-47``) calls
``bilateralfilter_batch`` of Tang et al.'s rloss, which builds Kraehenbuehl's
``Permutohedral`` lattice (densecrf ``permutohedral.cpp``) on the 5-D features
``(x / sxy, y / sxy, R / srgb, G / srgb, B / srgb)`` and computes ``AS`` (splat, blur with
[1/2, 1, 1/2] along the d + 1 lattice axes, slice, times ``alpha = 1 / (1 + 2^-d)``). This
module follows that code step by step, vectorised over pixels (benchmark use only: the package
computes ``W S`` exactly). ``benchmarks/crf_calibration.py`` compares it with the exact product.
"""

from __future__ import annotations

import numpy as np


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's ``round`` (halves away from zero), not NumPy's half-to-even."""
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


class Permutohedral:
    """The lattice of ``features`` (N, d) float32; ``compute(values)`` filters (N, K) values."""

    def __init__(self, features: np.ndarray) -> None:
        f = np.asarray(features, np.float32)
        n, d = f.shape
        self.d = d
        inv_std_dev = np.float32(np.sqrt(2.0 / 3.0) * (d + 1))
        scale = np.array([1.0 / np.sqrt((i + 2) * (i + 1)) * inv_std_dev for i in range(d)],
                         np.float32)
        # elevate onto the hyperplane sum = 0 of R^(d+1)
        elevated = np.zeros((n, d + 1), np.float32)
        sm = np.zeros(n, np.float32)
        for j in range(d, 0, -1):
            cf = f[:, j - 1] * scale[j - 1]
            elevated[:, j] = sm - j * cf
            sm = sm + cf
        elevated[:, 0] = sm
        # the closest 0-coloured lattice point, then the simplex around the point (ranks)
        down = np.float32(1.0 / (d + 1))
        rd = _round_half_away(elevated * down).astype(np.int64)
        rem0 = rd * (d + 1)
        total = rd.sum(axis=1)
        rank = np.zeros((n, d + 1), np.int64)
        diff = elevated - rem0.astype(np.float32)
        for i in range(d):
            for j in range(i + 1, d + 1):
                less = diff[:, i] < diff[:, j]
                rank[:, i] += less
                rank[:, j] += ~less
        rank += total[:, None]
        low, high = rank < 0, rank > d
        rank[low] += d + 1
        rem0[low] += d + 1
        rank[high] -= d + 1
        rem0[high] -= d + 1
        # barycentric coordinates (Adams et al. 2010, p. 10)
        bary = np.zeros((n, d + 2), np.float32)
        rows = np.arange(n)
        for i in range(d + 1):
            v = (elevated[:, i] - rem0[:, i].astype(np.float32)) * down
            np.add.at(bary, (rows, d - rank[:, i]), v)
            np.add.at(bary, (rows, d - rank[:, i] + 1), -v)
        bary[:, 0] += 1.0 + bary[:, d + 1]
        self.weights = bary[:, : d + 1]  # (N, d+1)
        # the d+1 vertices of each simplex; keys keep the first d coordinates (the last is implied)
        canonical = np.array([[r if j <= d - r else r - (d + 1) for j in range(d + 1)]
                              for r in range(d + 1)], np.int64)
        keys = np.empty((n, d + 1, d), np.int64)
        for r in range(d + 1):
            keys[:, r, :] = rem0[:, :d] + canonical[r][rank[:, :d]]
        codes = self._encode(keys.reshape(-1, d))
        self.lattice, inverse = np.unique(codes, return_inverse=True)
        self.offsets = inverse.reshape(n, d + 1)
        # neighbours of every lattice point along each of the d+1 axes (-1: not in the lattice)
        points = self._decode(self.lattice)
        self.neighbours = []
        for j in range(d + 1):
            n1, n2 = points - 1, points + 1
            if j < d:
                n1[:, j] = points[:, j] + d
                n2[:, j] = points[:, j] - d
            self.neighbours.append((self._find(n1), self._find(n2)))

    _BITS, _BIAS = 12, 2048

    def _encode(self, keys: np.ndarray) -> np.ndarray:
        if keys.min() < -self._BIAS or keys.max() >= self._BIAS:
            raise ValueError("lattice coordinates out of the encodable range: features too large")
        code = np.zeros(len(keys), np.int64)
        for k in range(keys.shape[1]):
            code = (code << self._BITS) | (keys[:, k] + self._BIAS)
        return code

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        out = np.empty((len(codes), self.d), np.int64)
        for k in range(self.d - 1, -1, -1):
            out[:, k] = (codes & ((1 << self._BITS) - 1)) - self._BIAS
            codes = codes >> self._BITS
        return out

    def _find(self, keys: np.ndarray) -> np.ndarray:
        inside = np.all((keys >= -self._BIAS) & (keys < self._BIAS), axis=1)
        codes = self._encode(np.where(inside[:, None], keys, 0))
        pos = np.clip(np.searchsorted(self.lattice, codes), 0, len(self.lattice) - 1)
        found = inside & (self.lattice[pos] == codes)
        return np.where(found, pos, -1)

    def compute(self, values: np.ndarray) -> np.ndarray:
        """Splat (N, K) values, blur along each axis, slice: the lattice's ``W S`` (N, K)."""
        values = np.asarray(values, np.float32)
        m, k = len(self.lattice), values.shape[1]
        grid = np.zeros((m + 1, k), np.float32)  # row 0: "no neighbour", always 0
        for r in range(self.d + 1):
            np.add.at(grid, self.offsets[:, r] + 1, self.weights[:, r, None] * values)
        for n1, n2 in self.neighbours:
            blurred = grid.copy()
            blurred[1:] = grid[1:] + 0.5 * (grid[n1 + 1] + grid[n2 + 1])
            grid = blurred
        alpha = np.float32(1.0 / (1.0 + 2.0 ** (-self.d)))
        out = np.zeros((len(values), k), np.float32)
        for r in range(self.d + 1):
            out += self.weights[:, r, None] * grid[self.offsets[:, r] + 1] * alpha
        return out


def lattice_ws(image: np.ndarray, probs: np.ndarray, sigma_xy: float, sigma_rgb: float
               ) -> np.ndarray:
    """``AS`` of the official loss for one image: image (3, H, W) in [0, 255], probs (K, H, W)
    -> (K, H, W). Features as rloss's ``initializePermutohedral``."""
    _, h, w = image.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    feats = np.stack([xs.ravel() / sigma_xy, ys.ravel() / sigma_xy,
                      *(image.reshape(3, -1).astype(np.float32) / sigma_rgb)], axis=1)
    lattice = Permutohedral(feats)
    return lattice.compute(probs.reshape(len(probs), -1).T).T.reshape(probs.shape)
