"""The new edition's release: split assignment, the official files and clip tree, and the note's Table 3.

- ``splits.assign_splits(retained, new, SplitTargets(val, test), seed, earlier)`` -> the edition's rows
- ``writer.write_release(rows, out_dir, edition=, classes=, previous=, removed=, added=)`` -> ``Release``
- ``geography.continent_shares(countries)`` -> ``Geography``; ``geography.beside_paper(geo, edition)``

The edition's Great Expectations suites live in the top-level ``expectations`` package.
"""
