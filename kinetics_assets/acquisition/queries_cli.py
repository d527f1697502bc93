"""`kinetics queries "class name"`: print a class's search-query expansion as JSON.

Lets a curator see exactly which queries (and why) the acquisition stage will
send to the video platform for a class, before any search is made.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Annotated

import typer

from kinetics_assets.acquisition.queries import (
    LANGUAGES,
    UnknownClassError,
    expand_queries,
)


def queries(
    class_name: Annotated[
        str, typer.Argument(help="Action class, e.g. 'stacking dice'.")
    ],
    lang: Annotated[
        list[str] | None,
        typer.Option(
            "--lang",
            help=f"Query language (repeatable); default: all of {', '.join(LANGUAGES)}.",
        ),
    ] = None,
    synonyms: Annotated[
        bool, typer.Option(help="Add filtered WordNet synonyms (English).")
    ] = True,
) -> None:
    """Print the queries for CLASS_NAME as a JSON list of {text, language, technique, source}."""
    try:
        expansion = expand_queries(
            class_name, languages=tuple(lang or LANGUAGES), synonyms=synonyms
        )
    except UnknownClassError as error:
        raise typer.BadParameter(
            f"{error} (use --lang en for other phrases)", param_hint="CLASS_NAME"
        ) from error
    except ValueError as error:
        raise typer.BadParameter(str(error)) from error
    typer.echo(
        json.dumps([asdict(query) for query in expansion], ensure_ascii=False, indent=2)
    )
