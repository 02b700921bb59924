"""Benchmarks: the scripts that measure accuracy, speed and the diagnosis, and render the tables the docs show.

Each module runs as a script (``python benchmarks/distill.py``, or ``python -m benchmarks.distill``) and
imports as ``benchmarks.<module>``; results go to ``benchmarks/results`` and the Markdown built from
them through :mod:`benchmarks.report`.
"""
