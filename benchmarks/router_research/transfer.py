"""Leave-one-source-out APGR of prompt routers: does a router help on a kind of prompt it never saw?

Groups: RouterBench's three tasks (arc-challenge, winogrande, mbpp) and the five sources of
router-train-extra. For each group, every router is fitted on the seven others (a question also in
the held-out group is dropped from training) and scored on the held-out group with that group's
own strong/weak pair. Routers:

    today        the shipped recipe (words + bigrams, logistic on the gpt-4 vs mixtral pair label)
    mf           a matrix-factorisation router (RouteLLM-style): s(m, p) = v_m . (W e_p) + b_m over a
                 static prompt embedding e_p, fitted on every model pair of every row
                 (P(a beats b) = sigmoid(s(a, p) - s(b, p))); routing score s(strong) - s(weak)
    length       longer -> strong (the built-in `length` classifier)
    random       mean over 20 seeds

A held-out pair whose models the training rows never saw is read through MODEL_MAP, as a route's
`models:` mapping reads a registry model as a trained one.

    python -m benchmarks.router_research.transfer TABLE.npz [--json FILE]
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.sparse import csr_matrix  # type: ignore[import-untyped]

from benchmarks.router_research.recorded import ROOT
from benchmarks.router_research.static_embedding import token_ids
from sidecar.offline.metrics import Pair, apgr, random_metrics, routing_curve
from sidecar.offline.training.data import Example, normalized, read_examples
from sidecar.offline.training.fit import FeatureCache, Linear, Vocabulary, fit_logistic
from sidecar.policy.learned import FeatureConfig

STRONG, WEAK = "gpt-4-1106-preview", "mistralai/mixtral-8x7b-chat"
PAIRS = {
    "arc-challenge": (STRONG, WEAK),
    "winogrande": (STRONG, WEAK),
    "mbpp": (STRONG, WEAK),
    "alpaca_eval": (STRONG, WEAK),
    "arena_bench_v1": (STRONG, WEAK),
    "openllm_v2_bbh": ("Qwen/Qwen2.5-72B-Instruct", WEAK),
    "llmrouter_nim9": ("nim/llama-3.1-nemotron-51b-instruct", "nim/mistral-7b-instruct-v0.3"),
    "routerarena": ("gemini-2.0-flash-001", "claude-3-haiku-20240307"),
}
MODEL_MAP = {  # unseen when their source is held out -> the nearest trained model of its family/tier
    "Qwen/Qwen2.5-72B-Instruct": "gpt-4-1106-preview",
    "nim/llama-3.1-nemotron-51b-instruct": "meta-llama/Meta-Llama-3.1-70B-Instruct",
    "nim/mistral-7b-instruct-v0.3": "mistralai/Mistral-7B-Instruct-v0.2",
    "gemini-2.0-flash-001": "gpt-4-1106-preview",
    "claude-3-haiku-20240307": "gpt-3.5-turbo-1106",
}


def group(e: Example) -> str:
    return e.task if e.source == "routerbench-subset" else e.source


class StaticEmbedder:
    def __init__(self, path: Path) -> None:
        data = np.load(path)
        self.table = data["table"].astype(np.float64)
        self.vocab = {str(w): i for i, w in enumerate(data["words"])}

    def __call__(self, text: str) -> np.ndarray:
        ids = token_ids(text, self.vocab)
        v = self.table[ids].mean(0) if ids else np.zeros(self.table.shape[1])
        n = np.linalg.norm(v)
        return v / n if n else v


# --- the MF router ----------------------------------------------------------------------------


class MFRouter:
    def __init__(
        self,
        dims: int = 16,
        l2: float = 1e-4,
        steps: int = 200,
        lr: float = 0.05,
        seed: int = 7,
        source_bias: bool = False,
    ):
        self.dims, self.l2, self.steps, self.lr, self.seed = dims, l2, steps, lr, seed
        # A bias per (source, model), used in training only: it absorbs "which source is this",
        # so that the prompt term can learn difficulty within a source (unseen sources get 0).
        self.source_bias = source_bias

    def fit(self, emb: np.ndarray, rows_: Sequence[Example]) -> MFRouter:
        models = sorted({m for e in rows_ for m in e.scores})
        self.index = {m: i for i, m in enumerate(models)}
        r_, a_, b_ = [], [], []
        for r, e in enumerate(rows_):
            items = [(self.index[m], s) for m, s in e.scores.items()]
            for i, (ma, sa) in enumerate(items):
                for mb, sb in items[i + 1 :]:
                    if sa > sb:
                        r_.append(r), a_.append(ma), b_.append(mb)
                    elif sb > sa:
                        r_.append(r), a_.append(mb), b_.append(ma)
        R, A, B = np.array(r_), np.array(a_), np.array(b_)
        ones = np.ones(len(R))
        # One-hot incidence matrices: scatter-adds as sparse products (np.add.at is ~50x slower).
        diff = csr_matrix(
            (np.r_[ones, -ones], (np.r_[np.arange(len(R)), np.arange(len(R))], np.r_[A, B])),
            shape=(len(R), len(models)),
        )
        rows = csr_matrix((ones, (np.arange(len(R)), R)), shape=(len(R), len(rows_)))
        names = sorted({group(e) for e in rows_})
        gi = np.array([names.index(group(e)) for e in rows_])[R] * len(models)
        gdiff = csr_matrix(
            (np.r_[ones, -ones], (np.r_[np.arange(len(R)), np.arange(len(R))], np.r_[gi + A, gi + B])),
            shape=(len(R), len(names) * len(models)),
        )
        rng = np.random.default_rng(self.seed)
        d = emb.shape[1]
        params = {
            "W": rng.normal(0, 0.1, (self.dims, d)),
            "V": rng.normal(0, 0.1, (len(models), self.dims)),
            "b": np.zeros(len(models)),
            "G": np.zeros(len(names) * len(models)),
        }
        m1 = {k: np.zeros_like(v) for k, v in params.items()}
        m2 = {k: np.zeros_like(v) for k, v in params.items()}
        for step in range(1, self.steps + 1):
            W, V, b, G = params["W"], params["V"], params["b"], params["G"]
            U = emb @ W.T
            UR = U[R]
            D = diff @ V
            z = np.einsum("ij,ij->i", D, UR) + diff @ b + (gdiff @ G if self.source_bias else 0.0)
            g = (1 / (1 + np.exp(-z)) - 1) / len(R)  # d(-log sigmoid z)/dz, averaged
            grads = {
                "W": (rows.T @ (g[:, None] * D)).T @ emb + self.l2 * W,
                "V": diff.T @ (g[:, None] * UR) + self.l2 * V,
                "b": diff.T @ g,
                "G": (gdiff.T @ g + self.l2 * G) if self.source_bias else np.zeros_like(G),
            }
            for k in params:  # Adam
                m1[k] = 0.9 * m1[k] + 0.1 * grads[k]
                m2[k] = 0.999 * m2[k] + 0.001 * grads[k] ** 2
                params[k] -= self.lr * (m1[k] / (1 - 0.9**step)) / (np.sqrt(m2[k] / (1 - 0.999**step)) + 1e-8)
        self.params = params
        return self

    def model(self, name: str) -> int:
        return self.index[name if name in self.index else MODEL_MAP[name]]

    def scores(self, emb: np.ndarray, strong: str, weak: str) -> np.ndarray:
        W, V, b = self.params["W"], self.params["V"], self.params["b"]
        s, w = self.model(strong), self.model(weak)
        return (emb @ W.T) @ (V[s] - V[w]) + b[s] - b[w]


# --- today's recipe, refitted per fold ---------------------------------------------------------


@dataclass(frozen=True)
class Today:
    """Today's recipe fitted on a fold: its labelled rows, their features, vocabulary and model."""

    labelled: list[Example]
    docs: list[frozenset[str]]
    vocab: Vocabulary
    model: Linear


def fit_today(train: Sequence[Example], cache: FeatureCache) -> Today:
    labelled = [e for e in train if e.weak_suffices(STRONG, WEAK) is not None]
    docs = [cache(e.question) for e in labelled]
    vocab = Vocabulary.build(docs, min_df=3, max_features=20000)
    model = fit_logistic(
        vocab.matrix(docs),
        [bool(e.weak_suffices(STRONG, WEAK)) for e in labelled],
        [1.0] * len(labelled),
        c=3.0,
    )
    return Today(labelled, docs, vocab, model)


def today_scores(train: Sequence[Example], held: Sequence[Example]) -> np.ndarray:
    cache = FeatureCache(FeatureConfig())
    today = fit_today(train, cache)
    return 1.0 - today.model.predict(today.vocab.matrix([cache(e.question) for e in held]))


def pair_head_scores(emb_tr: np.ndarray, train: Sequence[Example], emb_te: np.ndarray) -> np.ndarray:
    """One model-agnostic head: P(the row's own strong model beats its weak one), every source's
    pair pooled (a difficulty score, no model identity), logistic on the embedding."""
    from sklearn.linear_model import LogisticRegression  # type: ignore[import-untyped]

    x, y = [], []
    for e, v in zip(train, emb_tr, strict=True):
        strong, weak = PAIRS[group(e)]
        if strong in e.scores and weak in e.scores:
            x.append(v)
            y.append(e.scores[strong] > e.scores[weak])
    model = LogisticRegression(C=1.0, max_iter=2000).fit(np.array(x), np.array(y))
    return np.asarray(model.predict_proba(emb_te)[:, 1])


def familiarity(emb_tr: np.ndarray, emb: np.ndarray, k: int = 64, seed: int = 7) -> np.ndarray:
    """How like the training prompts a prompt is: its best cosine to k centroids of them."""
    rng = np.random.default_rng(seed)
    c = emb_tr[rng.choice(len(emb_tr), k, replace=False)]
    for _ in range(10):  # spherical k-means, a few rounds
        near = np.argmax(emb_tr @ c.T, axis=1)
        for j in range(k):
            members = emb_tr[near == j]
            if len(members):
                m = members.mean(0)
                c[j] = m / (np.linalg.norm(m) or 1)
    return np.asarray((emb @ c.T).max(1))


def _percentile(reference: np.ndarray, values: np.ndarray) -> np.ndarray:
    ref = np.sort(reference)
    return np.searchsorted(ref, values) / len(ref)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("table", type=Path)
    parser.add_argument("--json")
    parser.add_argument("--dims", type=int, default=16)
    parser.add_argument("--l2", type=float, default=1e-4)
    parser.add_argument("--source-bias", action="store_true")
    parser.add_argument(
        "--center", action="store_true", help="subtract each group's mean embedding (label-free)"
    )
    parser.add_argument("--only", nargs="*")
    args = parser.parse_args()
    files = [
        ROOT / "routerbench-subset" / "compact_questions_scores_costs.csv",
        ROOT / "router-train-extra" / "merged_train.csv",
    ]
    examples = [e for e in read_examples(files) if e.scores]
    embed = StaticEmbedder(args.table)
    started = time.monotonic()
    emb = np.array([embed(e.question) for e in examples])
    per_prompt_us = (time.monotonic() - started) / len(examples) * 1e6
    groups = np.array([group(e) for e in examples])
    if args.center:  # a deployment would subtract its own traffic's running mean
        for g in set(groups):
            emb[groups == g] -= emb[groups == g].mean(0)
    results: dict[str, object] = {"embed_us_per_prompt_mean": round(per_prompt_us, 1), "folds": {}}
    for held_name, (strong, weak) in PAIRS.items():
        if args.only and held_name not in args.only:
            continue
        held_keys = {normalized(e.question) for e, g in zip(examples, groups, strict=True) if g == held_name}
        tr = [
            i
            for i, (e, g) in enumerate(zip(examples, groups, strict=True))
            if g != held_name and normalized(e.question) not in held_keys
        ]
        te = [
            i
            for i, (e, g) in enumerate(zip(examples, groups, strict=True))
            if g == held_name and strong in e.scores and weak in e.scores
        ]
        train = [examples[i] for i in tr]
        held = [examples[i] for i in te]
        pair = Pair(np.array([e.scores[strong] for e in held]), np.array([e.scores[weak] for e in held]))
        t0 = time.monotonic()
        mf = MFRouter(dims=args.dims, l2=args.l2, source_bias=args.source_bias).fit(emb[tr], train)
        mf_held = mf.scores(emb[te], strong, weak)
        # The safe fallback: a prompt less familiar than 95% of training prompts is routed by
        # length; both scores are read as percentiles of their training values to share one scale.
        fam_tr = familiarity(emb[tr], emb[tr])
        fam_te = familiarity(emb[tr], emb[te])
        unfamiliar = fam_te < np.quantile(fam_tr, 0.05)
        len_tr = np.array([float(len(e.question)) for e in train])
        len_te = np.array([float(len(e.question)) for e in held])
        mf_pct = _percentile(mf.scores(emb[tr], strong, weak), mf_held)
        guarded = np.where(unfamiliar, _percentile(len_tr, len_te), mf_pct)
        row = {
            "rows": len(held),
            "pair": [strong, weak],
            "mf": apgr(routing_curve(pair, mf_held)),
            "mf_with_fallback": apgr(routing_curve(pair, guarded)),
            "unfamiliar_share": float(unfamiliar.mean()),
            "pair_head": apgr(routing_curve(pair, pair_head_scores(emb[tr], train, emb[te]))),
            "today": apgr(routing_curve(pair, today_scores(train, held))),
            "length": apgr(routing_curve(pair, np.array([float(len(e.question)) for e in held]))),
            "random": random_metrics(pair, seed=7, seeds=20).apgr,
            "fit_s": round(time.monotonic() - t0, 1),
        }
        row = {k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}
        results["folds"][held_name] = row  # type: ignore[index]
        print(held_name, row, flush=True)
    text = json.dumps(results, indent=1)
    if args.json:
        Path(args.json).write_text(text + "\n")
    print(text)


if __name__ == "__main__":
    main()
