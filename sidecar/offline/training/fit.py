"""Features to a sparse matrix, and a logistic regression fitted on it: the training primitives.

The vocabulary is every feature seen in at least `min_df` training prompts, the `max_features`
most frequent of them at most (ties broken by the feature's text, so the result never depends on
dict or set order). Rows are binary and scaled by 1/sqrt(distinct features of the prompt), as
`sidecar.policy.learned.Head.logit` scales them at run time.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]
from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

from sidecar.policy.learned import FeatureConfig, features


class FeatureCache:
    """Each distinct prompt is featurised once per run (many prompts train several outputs)."""

    def __init__(self, config: FeatureConfig) -> None:
        self.config = config
        self._memo: dict[str, frozenset[str]] = {}

    def __call__(self, text: str) -> frozenset[str]:
        f = self._memo.get(text)
        if f is None:
            f = self._memo[text] = frozenset(features(text, self.config))
        return f


@dataclass(frozen=True, slots=True)
class Vocabulary:
    terms: tuple[str, ...]

    @classmethod
    def build(cls, docs: Sequence[frozenset[str]], min_df: int, max_features: int) -> Vocabulary:
        df = Counter(f for d in docs for f in d)
        kept = sorted((f for f, n in df.items() if n >= min_df), key=lambda f: (-df[f], f))
        return cls(tuple(sorted(kept[:max_features])))

    def matrix(self, docs: Sequence[frozenset[str]]) -> csr_matrix:
        index = {t: i for i, t in enumerate(self.terms)}
        rows, cols, vals = [], [], []
        for r, d in enumerate(docs):
            scale = 1.0 / math.sqrt(len(d) or 1)
            for c in sorted(index[f] for f in d if f in index):
                rows.append(r)
                cols.append(c)
                vals.append(scale)
        return csr_matrix((vals, (rows, cols)), shape=(len(docs), len(self.terms)), dtype=np.float64)


@dataclass(frozen=True, slots=True)
class Linear:
    bias: float
    weights: npt.NDArray[np.float64]  # aligned with the vocabulary (or the embedding dimensions)

    def predict(self, x: csr_matrix | npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        z = x @ self.weights + self.bias
        return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def fit_logistic(
    x: csr_matrix | npt.NDArray[np.float64],
    y: Sequence[bool],
    weights: Sequence[float],
    c: float,
) -> Linear:
    """L2-regularised logistic regression (lbfgs: deterministic, no random state involved)."""
    labels = np.asarray(y, dtype=np.int64)
    if len(labels) == 0:
        raise ValueError("no labelled rows to fit on")
    if labels.min() == labels.max():  # one class only (tiny data): a constant model
        p = min(max(float(labels.mean()), 1e-3), 1 - 1e-3)
        return Linear(math.log(p / (1 - p)), np.zeros(x.shape[1]))
    model = LogisticRegression(C=c, max_iter=5000, tol=1e-6)
    model.fit(x, labels, sample_weight=np.asarray(weights, dtype=np.float64))
    return Linear(float(model.intercept_[0]), np.asarray(model.coef_[0], dtype=np.float64))
