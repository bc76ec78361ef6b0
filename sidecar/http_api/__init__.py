"""The OpenAI- and Anthropic-compatible HTTP front door: a second entry point onto the one pipeline.

server.py     the aiohttp app: routes, limits, auth, the call's telemetry, unary and SSE flow
wire.py       the plug-in point one API implements (read a body, write an answer, a stream, an error)
openai.py     POST /v1/chat/completions as OpenAI defines it
anthropic.py  POST /v1/messages as Anthropic defines it
reading.py    JSON -> domain values, collecting every field violation at once
hints.py      x-turnout-* request headers -> routing hints; the decision -> response headers
"""
