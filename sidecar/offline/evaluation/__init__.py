"""Offline routing-quality evaluation: replay a scored dataset through a router, no provider calls.

The modules, in the order data flows through them:

    dataset   CSV / JSONL file -> Dataset (prompts, per-model scores and costs, problems by line)
    scorer    the PromptScorer plug-in point, built-in baselines, and `load_scorer(spec)`
    metrics   pure numpy: threshold curves, APGR, CPT, cost at 95% quality, the N-model frontier
    run       EvalOptions -> EvalReport: the one place that strings the steps together
    report    EvalReport -> text table and JSON
    plot      EvalReport -> PNG (matplotlib, imported only when a plot is asked for)

Only `metrics`, `run`, `report` and `plot` need numpy (the `eval` extra); `dataset` and `scorer`
are standard library, so a router can implement `PromptScorer` without pulling numpy in. This
package is never imported by the serving path.
"""
