"""`python -m feedlens ...` is `feedlens ...`."""

from feedlens.cli.app import main

main()
