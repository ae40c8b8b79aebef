"""Batch jobs: a list of prompts to files, thousands at a time, resumable (`python -m model_core batch`).

`items` (the list, names, atomic files) < `runner` (skip, produce, write, report) < `command`.
"""
