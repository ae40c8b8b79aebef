"""Helpers for tests, benchmarks and the demo: random MoMask weights in the official layout.

Only in the checkout: the extension's model_core wheel leaves this package out.
"""
