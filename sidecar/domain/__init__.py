"""Pure vocabulary shared by every layer: requests, responses, models, plans, outcomes, errors.

Standard library only (an import-linter contract keeps it so), frozen dataclasses throughout, so
that a request, a plan or an attempt record can be passed between layers and tasks without copies.
"""
