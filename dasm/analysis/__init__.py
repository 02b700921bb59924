"""Diagnosis of the easy-sample bias: each analysis returns a tidy DataFrame; separate functions draw it.

This package imports the core, never ``dasm.widgets`` or ``dasm.cli``.
"""
