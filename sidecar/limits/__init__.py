"""Limits that hold for the whole deployment, not per pod: spend budgets over windows, kept in
counters that every pod shares through Redis (or this process alone, without a store).

    counters.py        the plug-in point (`Counters`: charge, add, totals, close) and LocalCounters
    redis_counters.py  RedisCounters: Lua check-and-add, batched adds, fallback while Redis is away
    windows.py         calendar (hour / day / month in a time zone) and rolling windows -> counter keys

The request path meets this package at two seams: before a request's first attempt it is charged
its estimated cost (refused past a hard limit), and every attempt's real cost is added as the
attempt ends; the estimate is given back when the request ends. Decision 060.
"""
