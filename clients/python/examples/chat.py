"""Ask Turnout for one answer: the model it chose and what the answer cost."""

import os

from turnout_client import Client, chat, format_usd

with Client(os.environ.get("TURNOUT_ADDRESS", "127.0.0.1:50051"), timeout=30) as turnout:
    answer = turnout.generate(chat("Is this email spam? 'You won a prize!'", task_type="classify"))
    print(answer.output.text)
    print(f"model: {answer.model}, cost: {format_usd(answer.cost_usd_nanos)}")
