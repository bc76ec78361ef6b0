"""Routing strategies: each a small unit with one method, `apply(draft)`, composed per route.

Every strategy narrows, reorders or splits the draft's alive entries and notes why. None does
I/O or awaits; all read the request, the registry entries and live statistics only.
"""
