"""``python -m app.cli`` runs the mskcds command line."""

from app.cli import main

main()
