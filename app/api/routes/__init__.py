"""Routers, one file per concern."""
