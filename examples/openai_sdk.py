"""An app written against the official OpenAI SDK gets Turnout's routing by changing base_url."""

import os

from openai import OpenAI

client = OpenAI(
    base_url=os.environ.get("TURNOUT_HTTP_URL", "http://127.0.0.1:8080/v1"),  # `make run` serves it
    api_key=os.environ.get("TURNOUT_HTTP_TOKEN", "unused-on-loopback"),  # server.http_auth_token_env
)
raw = client.chat.completions.with_raw_response.create(
    model="auto",  # the default route; or a route's name, or a registry model to pin it
    messages=[{"role": "user", "content": "Is this email spam? 'You won a prize!'"}],
    extra_headers={"x-turnout-task-type": "classify"},  # optional routing hints
)
answer = raw.parse()
print(answer.choices[0].message.content)
cost = int(raw.headers["x-turnout-cost-usd-nanos"]) / 1e9
print(f"model: {answer.model}, route: {raw.headers['x-turnout-route']}, cost: {cost:.6f} USD")
