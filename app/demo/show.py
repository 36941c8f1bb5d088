"""CDS Hooks cards printed for people: one panel per card, coloured by indicator, detail as Markdown."""

from __future__ import annotations

from typing import Any

from rich.console import Console, Group
from rich.markdown import Markdown
from rich.panel import Panel
from rich.text import Text

_COLOURS = {"critical": "red", "warning": "yellow", "info": "blue"}


def card_panel(card: dict[str, Any]) -> Panel:
    """A card as the EHR would show it: summary, detail, suggestions, links and the source."""
    indicator = card.get("indicator", "info")
    parts: list[Any] = [Text(card["summary"], style="bold")]
    if card.get("detail"):
        parts.append(Markdown(card["detail"]))
    for suggestion in card.get("suggestions") or []:
        parts.append(Text(f"suggestion: {suggestion['label']}", style="green"))
    for link in card.get("links") or []:
        parts.append(Text(f"link: {link['label']} <{link['url']}>", style="cyan"))
    source = card.get("source", {})
    title = f"[{_COLOURS.get(indicator, 'white')}]{indicator}[/] — {source.get('label', '')}"
    return Panel(Group(*parts), title=title, title_align="left", border_style=_COLOURS.get(indicator, "white"))


def print_cards(console: Console, heading: str, cards: list[dict[str, Any]]) -> None:
    console.rule(heading)
    if not cards:
        console.print("(no cards)")
    for card in cards:
        console.print(card_panel(card))
