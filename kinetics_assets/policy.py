"""The curation policy every stage shares: the minimum clips per class and the replenishment budget rules.

Production follows the note (700 clips per class); the sandbox profile scales the numbers down so a demo
world of a dozen classes exercises the same decisions.
"""

import dagster as dg
from pydantic import Field


class CurationPolicy(dg.ConfigurableResource):
    """Thresholds and budgets; one instance per profile (``resources/profiles.py``)."""

    minimum_clips_per_class: int = Field(default=700, ge=1, description="classes under this are replenished")
    safety_factor: float = Field(default=1.5, ge=1.0, description="extra candidates beyond deficit / yield")
    default_yield: float = Field(
        default=0.10, gt=0, le=1, description="expected P(published) for a class with no history and no prior"
    )
    max_candidates_per_class: int = Field(default=5000, ge=1, description="hard cap on the candidate budget")
    results_per_query: int = Field(default=50, ge=1, description="search results requested per query")
    min_source_seconds: float = Field(
        default=2.0, ge=0, description="shorter videos are dropped; 2-10 s ones are kept whole and flagged"
    )
    val_clips_per_class: int = Field(default=50, ge=0, description="new clips fill val up to this per class")
    test_clips_per_class: int = Field(default=100, ge=0, description="new clips fill test up to this per class")
    split_tolerance: float = Field(default=0.1, ge=0, description="allowed relative deviation from the targets")
    split_seed: int = Field(default=0, description="seeds the order in which new clips fill val and test")
    min_yes_share: float = Field(
        default=0.6, ge=0, le=1, description="final filter: share of a clip's votes that must be 'yes'"
    )
    gone_after_s: float = Field(
        default=7 * 24 * 3600, ge=0, description="link-rot: a video is gone after two permanent answers this far apart"
    )
    link_rot_batch: int = Field(default=50, ge=1, description="link-rot sensor: videos probed per tick at most")
