"""The new edition's release: split assignment, the official files and clip tree, and the note's Table 3."""
