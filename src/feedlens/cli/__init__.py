"""The `feedlens` command line (Typer). Calls services only."""
