"""Answer-aware cascades on RouterBench's recorded answers, in the money table's terms.

Every policy is scored per prompt with the recorded answers: accuracy is the recorded score of the
answer returned, cost is the recorded cost of *every* call made (a rejected cheap answer is paid
for). Configurations and thresholds are chosen on the train split only (or, leave-one-task-out, on
the two other tasks) and then applied unchanged to the held-out prompts.

    python -m benchmarks.router_research.cascades [--json FILE]
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from benchmarks.router_research.recorded import FRONTIER, Recorded, train_test
from sidecar.execution.agreement import choice

_FENCE = re.compile(r"```[a-zA-Z]*\n(.*?)(?:```|$)|\[PYTHON\](.*?)(?:\[/PYTHON\]|$)", re.S)


def code(text: str) -> str | None:
    """The first code block, without comments, blank lines and indentation differences."""
    m = _FENCE.search(text)
    body = (m.group(1) or m.group(2)) if m else (text if "def " in text else None)
    if body is None:
        return None
    lines = [re.sub(r"#.*", "", ln).strip() for ln in body.splitlines()]
    return "\n".join(ln for ln in lines if ln) or None


def normalised(task: str, text: str) -> str | None:
    return code(text) if task == "mbpp" else choice(text)


@dataclass(frozen=True)
class Outcome:
    correct: np.ndarray  # 0/1 per prompt
    cost: np.ndarray  # USD per prompt, every call
    escalated: np.ndarray  # bool per prompt
    calls_ahead: np.ndarray  # sequential stages before the answer (latency proxy: 1 or 2)


def frontier(d: Recorded) -> Outcome:
    n = len(d)
    return Outcome(d.scores[FRONTIER], d.costs[FRONTIER], np.zeros(n, bool), np.ones(n))


def consensus(d: Recorded, cheap: Sequence[str], need: int, top: str = FRONTIER) -> Outcome:
    """Ask every `cheap` model at once; accept the answer `need` of them agree on, else ask `top`.

    The accepted answer is that of the cheapest model in the agreeing group (all agree on it).
    """
    norm = {m: [normalised(t, a) for t, a in zip(d.tasks, d.answers[m], strict=True)] for m in cheap}
    correct = np.zeros(len(d))
    cost = np.zeros(len(d))
    escalated = np.zeros(len(d), bool)
    for i in range(len(d)):
        votes: dict[str, list[str]] = {}
        for m in cheap:
            if norm[m][i] is not None:
                votes.setdefault(norm[m][i], []).append(m)
        cost[i] = sum(d.costs[m][i] for m in cheap)
        best = max(votes.values(), key=len, default=[])
        if len(best) >= need:
            correct[i] = d.scores[best[0]][i]
        else:
            escalated[i] = True
            correct[i] = d.scores[top][i]
            cost[i] += d.costs[top][i]
    return Outcome(correct, cost, escalated, 1 + escalated)


def staged_consensus(d: Recorded, first: Sequence[str], tiebreak: str, top: str = FRONTIER) -> Outcome:
    """Two cheap models at once; if they disagree, a third cheap one: accept a 2-of-3 majority,
    else ask `top`. Pays the tiebreaker only on disagreement."""
    a, b = first
    na = [normalised(t, x) for t, x in zip(d.tasks, d.answers[a], strict=True)]
    nb = [normalised(t, x) for t, x in zip(d.tasks, d.answers[b], strict=True)]
    nc = [normalised(t, x) for t, x in zip(d.tasks, d.answers[tiebreak], strict=True)]
    correct = np.zeros(len(d))
    cost = d.costs[a] + d.costs[b]
    cost = cost.copy()
    escalated = np.zeros(len(d), bool)
    stages = np.ones(len(d))
    for i in range(len(d)):
        if na[i] is not None and na[i] == nb[i]:
            correct[i] = d.scores[a][i]
            continue
        cost[i] += d.costs[tiebreak][i]
        stages[i] = 2
        if nc[i] is not None and nc[i] in (na[i], nb[i]):
            correct[i] = d.scores[tiebreak][i]
            continue
        escalated[i] = True
        stages[i] = 3
        correct[i] = d.scores[top][i]
        cost[i] += d.costs[top][i]
    return Outcome(correct, cost, escalated, stages)


def summary(o: Outcome, base: Outcome) -> dict[str, float]:
    return {
        "accuracy": round(float(o.correct.mean()), 4),
        "points_vs_frontier": round(100 * float(o.correct.mean() - base.correct.mean()), 2),
        "cost_vs_frontier": round(float(o.cost.sum() / base.cost.sum()), 4),
        "escalated": round(float(o.escalated.mean()), 4),
        "mean_sequential_stages": round(float(o.calls_ahead.mean()), 3),
    }


# --- the scored cascade: a small learned scorer on (prompt, answers) features ------------------------

_HEDGE = re.compile(r"\b(i think|probably|not sure|it seems|might|unclear|cannot|can't|sorry)\b", re.I)
_OPTION = re.compile(r"^\s*\(?[A-E]\)", re.M)
_WORD = re.compile(r"\w+")


def _jaccard(a: str | None, b: str | None) -> float:
    if a is None or b is None:
        return 0.0
    x, y = set(_WORD.findall(a)), set(_WORD.findall(b))
    return len(x & y) / len(x | y) if x | y else 0.0


@dataclass(frozen=True)
class Vote:
    """What k cheap answers to one prompt say, without the answer key."""

    answer_model: str  # whose answer would be returned
    features: list[float]


def vote(task: str, prompt: str, answers: dict[str, str]) -> Vote:
    """Plurality for choices (ties: the first model listed), the first model's answer for code;
    features: agreement, format breaks, chance agreement (2 options agree by chance more than 4),
    the answer's form and hedging."""
    models = list(answers)
    norm = {m: normalised(task, answers[m]) for m in models}
    if task == "mbpp":
        first = models[0]
        sims = [_jaccard(norm[first], norm[m]) for m in models[1:]] or [1.0]
        share = float(np.mean(sims))
        winner = first
    else:
        counts: dict[str, int] = {}
        for m in models:
            if norm[m] is not None:
                counts[norm[m]] = counts.get(norm[m], 0) + 1
        top = max(counts.values(), default=0)
        winner = next((m for m in models if norm[m] is not None and counts[norm[m]] == top), models[0])
        share = top / len(models)
    options = len(_OPTION.findall(prompt)) or 4
    text = answers[winner]
    return Vote(
        winner,
        [
            1.0,
            share,
            float(share >= 1.0 - 1e-9),
            sum(v is None for v in norm.values()) / len(models),
            1.0 / options if task != "mbpp" else 0.0,
            float(task == "mbpp"),
            float(task == "mbpp" and ("def " in text or "[PYTHON]" in text)),
            np.log1p(len(text.strip())) / 8,
            float(bool(_HEDGE.search(text))),
        ],
    )


def votes(d: Recorded, cheap: Sequence[str]) -> list[Vote]:
    return [vote(t, d.questions[i], {m: d.answers[m][i] for m in cheap}) for i, t in enumerate(d.tasks)]


def scored(
    d: Recorded,
    cheap: Sequence[str],
    vs: Sequence[Vote],
    p_ok: np.ndarray,
    threshold: float,
    top: str = FRONTIER,
) -> Outcome:
    accept = p_ok >= threshold
    chosen = np.array([d.scores[v.answer_model][i] for i, v in enumerate(vs)])
    correct = np.where(accept, chosen, d.scores[top])
    cost = sum((d.costs[m] for m in cheap), np.zeros(len(d))) + np.where(accept, 0, d.costs[top])
    return Outcome(correct, cost, ~accept, 1 + ~accept)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1.0, steps: int = 100) -> np.ndarray:
    """Plain L2 logistic regression by Newton's method (nine features: no library needed)."""
    w = np.zeros(x.shape[1])
    reg = l2 * np.diag(np.r_[0, np.ones(len(w) - 1)])
    for _ in range(steps):
        p = 1 / (1 + np.exp(-x @ w))
        grad = x.T @ (p - y) + reg @ w
        hess = (x * (p * (1 - p))[:, None]).T @ x + reg
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def oof(x: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5, seed: int = 7) -> np.ndarray:
    """Out-of-fold predictions on train, for calibrating the threshold on data the scorer did not fit."""
    rng = np.random.default_rng(seed)
    fold = rng.integers(0, folds, len(y))
    out = np.zeros(len(y))
    for k in range(folds):
        w = fit_logistic(x[fold != k], y[fold != k])
        out[fold == k] = 1 / (1 + np.exp(-x[fold == k] @ w))
    return out


# --- honest selection ----------------------------------------------------------------------------

Policy = Callable[[Recorded], Outcome]


def choose(train: Recorded, candidates: dict[str, Policy], margin_points: float) -> str:
    """The cheapest candidate whose *train* accuracy is within `margin_points` of the frontier's."""
    base = frontier(train)
    ok = []
    for name, policy in candidates.items():
        s = summary(policy(train), base)
        if s["points_vs_frontier"] >= -margin_points:
            ok.append((s["cost_vs_frontier"], name))
    return min(ok)[1] if ok else "frontier"


CHEAP = [
    "mistralai/mistral-7b-chat",
    "WizardLM/WizardLM-13B-V1.2",
    "mistralai/mixtral-8x7b-chat",
    "meta/code-llama-instruct-34b-chat",
    "zero-one-ai/Yi-34B-Chat",
    "claude-instant-v1",
    "meta/llama-2-70b-chat",
    "gpt-3.5-turbo-1106",
]


def consensus_candidates() -> dict[str, Policy]:
    out: dict[str, Policy] = {}
    for k in (2, 3):
        for group in itertools.combinations(CHEAP, k):
            for need in range(2, k + 1):
                out[f"consensus {need}/{k} {'+'.join(m.rsplit('/', 1)[-1] for m in group)}"] = (
                    lambda d, g=group, n=need: consensus(d, g, n)
                )
    for a, b in itertools.combinations(CHEAP, 2):
        for c in CHEAP:
            if c not in (a, b):
                out[f"staged {a.rsplit('/', 1)[-1]}+{b.rsplit('/', 1)[-1]} then {c.rsplit('/', 1)[-1]}"] = (
                    lambda d, a=a, b=b, c=c: staged_consensus(d, (a, b), c)
                )
    return out


def scored_cascade(
    train: Recorded, held: Recorded, cheap: Sequence[str], margin_points: float
) -> tuple[Outcome, float, list[float]]:
    """Fit the scorer on train, calibrate its threshold on train out-of-fold, apply to `held`."""
    vt = votes(train, cheap)
    xt = np.array([v.features for v in vt])
    yt = np.array([train.scores[v.answer_model][i] for i, v in enumerate(vt)])
    p_train = oof(xt, yt, train.tasks)
    base = frontier(train)
    best = 1.01
    for t in np.linspace(0, 1, 101):
        s = summary(scored(train, cheap, vt, p_train, t), base)
        if s["points_vs_frontier"] >= -margin_points:
            best = min(best, t)
    w = fit_logistic(xt, yt)
    vh = votes(held, cheap)
    p_held = 1 / (1 + np.exp(-np.array([v.features for v in vh]) @ w))
    return scored(held, cheap, vh, p_held, best), float(best), [round(float(x), 3) for x in w]


SCORED_SETS = [
    ["mistralai/mixtral-8x7b-chat", "zero-one-ai/Yi-34B-Chat"],
    ["gpt-3.5-turbo-1106", "mistralai/mixtral-8x7b-chat"],
    ["gpt-3.5-turbo-1106", "zero-one-ai/Yi-34B-Chat"],
    ["gpt-3.5-turbo-1106", "mistralai/mixtral-8x7b-chat", "zero-one-ai/Yi-34B-Chat"],
    ["zero-one-ai/Yi-34B-Chat", "mistralai/mixtral-8x7b-chat", "mistralai/mistral-7b-chat"],
    ["gpt-3.5-turbo-1106", "mistralai/mixtral-8x7b-chat", "zero-one-ai/Yi-34B-Chat", "meta/llama-2-70b-chat"],
]


# --- a route per kind of request (the application's task type), chosen on train ----------------------


def code_first(model: str, format_check: bool) -> Policy:
    """Code to one cheap model; with the format check, to the frontier when the answer has no code."""

    def policy(d: Recorded) -> Outcome:
        ok = np.ones(len(d), bool)
        if format_check:
            ok = np.array([("def " in a or "[PYTHON]" in a) for a in d.answers[model]])
        chosen = np.where(ok, d.scores[model], d.scores[FRONTIER])
        return Outcome(chosen, d.costs[model] + np.where(ok, 0, d.costs[FRONTIER]), ~ok, 1 + ~ok)

    return policy


def _total(parts: Sequence[tuple[Outcome, Recorded]]) -> tuple[float, float]:
    """Points vs the frontier and cost as a fraction of its cost, over the union of the parts."""
    n = sum(len(d) for _, d in parts)
    points = 100 * sum(o.correct.sum() - d.scores[FRONTIER].sum() for o, d in parts) / n
    cost = sum(o.cost.sum() for o, _ in parts) / sum(d.costs[FRONTIER].sum() for _, d in parts)
    return float(points), float(cost)


def per_kind(train: Recorded, test: Recorded, margin: float) -> dict[str, object]:
    """Multiple choice (ARC, Winogrande) and code (MBPP) each get a policy; the pair is the cheapest
    whose *train* figure is within `margin` points of the frontier. Leave-one-task-out: the choice
    policy is chosen without the held-out choice task and applied to it."""
    mc = {k: p for k, p in consensus_candidates().items() if k.startswith("consensus")}
    mc["frontier"] = frontier
    code = {
        f"{m.rsplit('/', 1)[-1]}{' + format check' if f else ''}": code_first(m, f)
        for m in CHEAP
        for f in (0, 1)
    }
    code["frontier"] = frontier

    def pick(mc_fit: Recorded, co_fit: Recorded) -> tuple[str, str, float, float]:
        mc_out = {k: p(mc_fit) for k, p in mc.items()}
        co_out = {k: p(co_fit) for k, p in code.items()}
        best = ("frontier", "frontier", 0.0, 1.0)
        for km, om in mc_out.items():
            for kc, oc in co_out.items():
                points, cost = _total([(om, mc_fit), (oc, co_fit)])
                if points >= -margin and cost < best[3]:
                    best = (km, kc, points, cost)
        return best

    is_mc_tr, is_mc_te = train.tasks != "mbpp", test.tasks != "mbpp"
    mc_tr, co_tr, mc_te, co_te = (
        train.subset(is_mc_tr),
        train.subset(~is_mc_tr),
        test.subset(is_mc_te),
        test.subset(~is_mc_te),
    )
    km, kc, tr_points, tr_cost = pick(mc_tr, co_tr)
    om, oc = mc[km](mc_te), code[kc](co_te)
    points, cost = _total([(om, mc_te), (oc, co_te)])
    lat = np.r_[om.calls_ahead, oc.calls_ahead]
    out: dict[str, object] = {
        "choice": km,
        "code": kc,
        "train": {"points": round(tr_points, 2), "cost": round(tr_cost, 3)},
        "test": {
            "points": round(points, 2),
            "cost": round(cost, 3),
            "escalated": round(float(np.r_[om.escalated, oc.escalated].mean()), 3),
            "two_sequential_calls": round(float((lat > 1).mean()), 3),
        },
    }
    loto = {}
    for task in ("arc-challenge", "winogrande"):
        fit = mc_tr.subset(mc_tr.tasks != task)
        km2, _, _, _ = pick(fit, co_tr)
        held, rest = mc_te.subset(mc_te.tasks == task), mc_te.subset(mc_te.tasks != task)
        oh = mc[km2](held)
        p_all, c_all = _total([(oh, held), (mc[km](rest), rest), (oc, co_te)])
        p_h, c_h = _total([(oh, held)])
        loto[task] = {
            "choice_chosen_without_it": km2,
            "on_it": {"points": round(p_h, 2), "cost": round(c_h, 3)},
            "whole_test_split": {"points": round(p_all, 2), "cost": round(c_all, 3)},
        }
    out["leave_one_task_out"] = loto
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--json")
    parser.add_argument("--margin", type=float, default=1.0, help="train-side accuracy margin, points")
    args = parser.parse_args()
    train, test = train_test()
    results: dict[str, object] = {"train_rows": len(train), "test_rows": len(test)}
    cands = consensus_candidates()
    # test split: choose on train
    name = choose(train, cands, args.margin)
    results["consensus_test"] = {"chosen_on_train": name, **summary(cands[name](test), frontier(test))}
    # the best few on train, for the record
    base_tr = frontier(train)
    ranked = sorted(
        ((summary(p(train), base_tr), n) for n, p in cands.items()),
        key=lambda sn: sn[0]["cost_vs_frontier"],
    )
    results["consensus_train_frontier"] = [
        {"name": n, **s} for s, n in ranked if s["points_vs_frontier"] >= -3
    ][:12]
    # leave one task out
    loto = {}
    for task in ("arc-challenge", "winogrande", "mbpp"):
        fit, held = train.subset(train.tasks != task), test.subset(test.tasks == task)
        n2 = choose(fit, cands, args.margin)
        loto[task] = {"chosen": n2, **summary(cands[n2](held), frontier(held))}
    # pooled: every held-out task's prompts together
    results["consensus_loto"] = loto
    # scored cascades
    sc = {}
    for cheap in SCORED_SETS:
        o, t, w = scored_cascade(train, test, cheap, args.margin)
        key = "scored " + "+".join(m.rsplit("/", 1)[-1] for m in cheap)
        per = {}
        for task in ("arc-challenge", "winogrande", "mbpp"):
            fit, held = train.subset(train.tasks != task), test.subset(test.tasks == task)
            o2, t2, _ = scored_cascade(fit, held, cheap, args.margin)
            per[task] = {"threshold": t2, **summary(o2, frontier(held))}
        sc[key] = {"threshold": t, "weights": w, **summary(o, frontier(test)), "loto": per}
    results["scored"] = sc
    results["per_kind"] = {str(m): per_kind(train, test, m) for m in (1.0, 1.5, 2.0)}
    text = json.dumps(results, indent=1)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
