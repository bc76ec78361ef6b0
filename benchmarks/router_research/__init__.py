"""Offline router research on the shared data: transfer of prompt routers, answer-aware cascades."""
