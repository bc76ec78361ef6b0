"""Offline routing-quality work: nothing here runs on the request path.

    evaluation/  `turnout eval`: replay a scored dataset through routers, curves and reports
    training/    `turnout train`: fit, calibrate and write the learned router's artifact
    metrics.py   the routing-quality metrics both share (APGR, threshold curves, frontier)

Both read the serving side's own code where they must agree with it (the learned router's
features in policy/learned.py, the built-in classifiers): the dependency runs offline -> policy,
never back.
"""
