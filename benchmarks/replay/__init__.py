"""The money bench's parts (benchmarks/money_bench.py): the prompts, the figures and the plot.

models.yaml beside them: the 11 RouterBench models' prices, latency profiles and registry entries.
"""
