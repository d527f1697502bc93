"""Candidate acquisition: turning action classes into platform search queries and candidates."""
