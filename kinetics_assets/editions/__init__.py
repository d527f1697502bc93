"""Editions: the official class lists, annotation CSVs and their statistics (the note's Table 1)."""
