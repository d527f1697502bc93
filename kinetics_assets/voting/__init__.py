"""Crowd voting: annotation tasks out, rater votes in, acceptance, rater quality and per-class yields.

Pure functions over DataFrames and bytes; the Dagster assets and the inbox sensor are thin wiring on top.
"""
