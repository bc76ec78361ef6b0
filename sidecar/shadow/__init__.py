"""Shadow evaluation: a share of live traffic also goes to a reference model, off the critical path.

The answer the caller got is compared with the reference model's (exact, JSON, or a judge model);
per-route agreement over a sliding window is exported, and a drop below the route's threshold
raises an alert (a metric and a log line). The caller's request never waits for any of it.
"""
