"""The sandbox video platform: a deterministic, local stand-in for a public video site.

world.py generates the videos (metadata, search, link-rot, media), render.py draws and encodes them, text.py
writes their titles, edition.py emits a "previous edition" of annotations, truth.py exposes ground truth for
tests and evaluation only. Serving over HTTP lives in server.py and friends.
"""
