"""Where editions' official annotation CSVs live, and which edition is the one being replenished."""

from pathlib import Path

import dagster as dg
from pydantic import Field



class EditionFiles(dg.Config):
    """One edition: a display name, the taxonomy whose class list validates its labels, and its CSV files."""

    name: str
    taxonomy: str = Field(description="Kinetics-400, Kinetics-600, Kinetics-700 or Kinetics-700-2020")
    files: list[str]


class EditionCatalog(dg.ConfigurableResource):
    """The editions a profile knows about; ``current`` is the one whose classes are replenished."""

    editions: list[EditionFiles]
    current: str
    how_to_create: str = Field(default="", description="hint shown when a file is missing")

    def files_of(self, edition: EditionFiles) -> list[Path]:
        """The edition's files, or a clear error naming the first one missing or not a regular file (a FIFO
        would block its reader)."""
        paths = [Path(name) for name in edition.files]
        for path in paths:
            if path.exists() and not path.is_file():
                raise ValueError(f"annotation file of edition {edition.name!r} is not a regular file: {path}")
            if not path.is_file():
                hint = f" ({self.how_to_create})" if self.how_to_create else ""
                raise FileNotFoundError(f"annotation file of edition {edition.name!r} not found: {path}{hint}")
        return paths

    def current_edition(self) -> EditionFiles:
        for edition in self.editions:
            if edition.name == self.current:
                return edition
        raise ValueError(f"current edition {self.current!r} is not in the catalog: {[e.name for e in self.editions]}")
