"""Duplicate clusters (union-find over confirmed matches) and which clip of each cluster is kept.

Clusters are global: across classes and against the retained clips of the previous edition. The keeper is the
previous-edition clip if any (a released clip must not be replaced by its own copy), then the higher source
resolution, then the earlier upload, then the smaller id. A reviewer's overrides (see ``review``) can split a
cluster (its clips are not duplicates of each other) or force its keeper.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

from kinetics_assets.dedup.match import ClipMatch

DECISION_COLUMNS = ("clip_id", "cluster_id", "keep", "keeper_id", "reason")


@dataclass(frozen=True)
class ClipItem:
    clip_id: str
    label: str = ""
    is_previous_edition: bool = False
    source_height: int = 0
    upload_date: str = ""   # YYYYMMDD or YYYY-MM-DD; unknown sorts last

    def keep_rank(self) -> tuple:
        day = self.upload_date.replace("-", "")
        return (not self.is_previous_edition, -self.source_height, day == "", day, self.clip_id)


def clip_items(clips: pd.DataFrame) -> list[ClipItem]:
    """One ClipItem per row of a clip table indexed by clip_id with the class_name, origin ("previous" for the
    previous edition) and height columns the fingerprint assets write."""
    return [ClipItem(clip_id=clip_id, label=label, is_previous_edition=origin == "previous",
                     source_height=int(height or 0))
            for clip_id, label, origin, height in zip(clips.index.tolist(), clips["class_name"].tolist(),
                                                      clips["origin"].tolist(), clips["height"].tolist())]


@dataclass(frozen=True)
class Override:
    """A reviewer's decision on a cluster: ``keep`` forces ``keep_id``; ``split`` says ``members`` are distinct."""

    cluster_id: str
    decision: str           # keep | split
    keep_id: str = ""
    members: tuple[str, ...] = ()


class UnionFind:
    def __init__(self, n: int):
        self.parent = list(range(n))

    def find(self, x: int) -> int:
        while self.parent[x] != x:
            self.parent[x] = self.parent[self.parent[x]]
            x = self.parent[x]
        return x

    def union(self, x: int, y: int) -> None:
        rx, ry = self.find(x), self.find(y)
        if rx != ry:
            self.parent[max(rx, ry)] = min(rx, ry)


def cluster_id(members: Iterable[str]) -> str:
    """A name for a set of clips that is the same in every run that finds the same set."""
    digest = hashlib.blake2b("\n".join(sorted(members)).encode(), digest_size=5).hexdigest()
    return f"dup-{digest}"


def _check_items(items: Sequence[ClipItem]) -> dict[str, int]:
    position = {}
    for k, item in enumerate(items):
        if not item.clip_id:
            raise ValueError(f"item {k}: empty clip_id")
        if item.clip_id in position:
            raise ValueError(f"item {k}: clip_id {item.clip_id!r} appears twice (first at item {position[item.clip_id]})")
        position[item.clip_id] = k
    return position


def _split_groups(overrides: Sequence[Override], position: dict[str, int]) -> list[set[int]]:
    return [{position[m] for m in o.members if m in position} for o in overrides if o.decision == "split"]


def effective_matches(items: Sequence[ClipItem], matches: Sequence[ClipMatch], overrides: Sequence[Override] = ()
                      ) -> list[ClipMatch]:
    """The matches that count: those between two clips that a ``split`` override lists together are dropped."""
    splits = _split_groups(overrides, _check_items(items))
    return [m for m in matches if not any(m.a in group and m.b in group for group in splits)]


def clusters(items: Sequence[ClipItem], matches: Sequence[ClipMatch], overrides: Sequence[Override] = ()
             ) -> list[list[int]]:
    """Clusters of two or more items (positions, ascending), ordered by their first member."""
    uf = UnionFind(len(items))
    for m in effective_matches(items, matches, overrides):
        uf.union(m.a, m.b)
    groups: dict[int, list[int]] = {}
    for k in range(len(items)):
        groups.setdefault(uf.find(k), []).append(k)
    return sorted((g for g in groups.values() if len(g) > 1), key=lambda g: g[0])


def _reason(member: int, keeper: int, own: list[ClipMatch], items: Sequence[ClipItem]) -> str:
    """Why ``member`` is dropped: its direct match with the keeper, else its strongest match in the cluster."""
    direct = [m for m in own if keeper in (m.a, m.b)]
    best = max(direct or own, key=lambda m: (m.frames, -m.mean_distance))
    other = best.b if best.a == member else best.a
    # offset in the result is "time in the other clip minus time in this one"
    offset = best.offset if best.a == other else -best.offset
    described = ClipMatch(other, member, offset, best.frames, best.mean_distance, best.mirrored, best.kind).describe()
    via = "" if other == keeper else f" via {items[other].clip_id}"
    return f"duplicate of {items[keeper].clip_id}{via} ({described})"


def decide(items: Sequence[ClipItem], matches: Sequence[ClipMatch], overrides: Sequence[Override] = ()
           ) -> pd.DataFrame:
    """One row per clip in a cluster: clip_id, cluster_id, keep, keeper_id, reason (empty for the keeper)."""
    position = _check_items(items)
    forced = {position[o.keep_id]: o for o in overrides if o.decision == "keep" and o.keep_id in position}
    counted = effective_matches(items, matches, overrides)
    by_clip: dict[int, list[ClipMatch]] = {}
    for m in counted:
        by_clip.setdefault(m.a, []).append(m)
        by_clip.setdefault(m.b, []).append(m)
    rows = []
    for group in clusters(items, counted):
        chosen = [k for k in group if k in forced]
        keeper = chosen[0] if chosen else min(group, key=lambda k: items[k].keep_rank())
        name = cluster_id(items[k].clip_id for k in group)
        for k in group:
            keep = k == keeper
            if keep:
                reason = f"kept by reviewer ({forced[k].cluster_id})" if k in forced else ""
            else:
                reason = _reason(k, keeper, by_clip[k], items)
            rows.append((items[k].clip_id, name, keep, items[keeper].clip_id, reason))
    return pd.DataFrame(rows, columns=list(DECISION_COLUMNS))
