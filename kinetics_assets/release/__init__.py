"""The new edition's release: split assignment, the official files and clip tree, and the note's Table 3.

- ``splits.assign_splits(retained, new, SplitTargets(val, test), seed, earlier)`` -> the edition's rows
- ``writer.publish_release(rows, releases, stem=, classes=, source=, gone=)`` -> ``Release`` (a new ``{stem}-{n}``)
- ``geography.continent_shares(countries)`` -> ``Geography``; ``geography.beside_paper(geo, edition)``

The edition's Great Expectations suites live in the top-level ``expectations`` package.
"""
