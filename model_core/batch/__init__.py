"""Batch jobs: a list of prompts to files, thousands at a time, resumable (`python -m model_core batch`).

`items` (the list, names, what a file holds) < `runner` (skip, produce, write through
`inputs.paths`, report) < `command`.
"""
