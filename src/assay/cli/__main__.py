"""python -m assay.cli: the assay command line."""

from assay.cli import app

app()
