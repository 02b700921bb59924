"""What the panels share: display delegation to ``.widget``, a coloured status line, Output contents."""

from __future__ import annotations

import base64
import html

import ipywidgets as widgets
import pandas as pd

_STATUS_COLORS = {"info": "inherit", "ok": "#1a7f37", "warn": "#9a6700", "error": "#cf222e"}


class Panel:
    """Base of the panels: ``widget`` is the top-level box, and a bare ``panel`` in a cell shows it."""

    widget: widgets.Box

    def _ipython_display_(self) -> None:
        from IPython.display import display

        display(self.widget)

    def _repr_mimebundle_(self, **kwargs: object) -> dict:
        return self.widget._repr_mimebundle_(**kwargs)


class StatusLine:
    """An HTML widget (CSS class ``dasm-status``) holding one message; ``text`` keeps it as plain text."""

    def __init__(self) -> None:
        self.widget = widgets.HTML()
        self.widget.add_class("dasm-status")
        self.text = ""
        self.kind = "info"

    def set(self, text: str, kind: str = "info") -> None:
        """Show ``text`` coloured by ``kind`` (``info``, ``ok``, ``warn`` or ``error``)."""
        self.text, self.kind = text, kind
        color = _STATUS_COLORS[kind]
        body = html.escape(text).replace("\n", "<br>")
        self.widget.value = f'<div style="color:{color}; white-space:pre-wrap">{body}</div>'


def png_output(png: bytes, text: str = "figure") -> dict:
    """An Output-widget entry showing the PNG ``png`` (with a plain-text fallback)."""
    return {"output_type": "display_data", "metadata": {},
            "data": {"image/png": base64.b64encode(png).decode("ascii"), "text/plain": text}}


def html_output(markup: str, text: str = "") -> dict:
    """An Output-widget entry showing the HTML ``markup``."""
    return {"output_type": "display_data", "metadata": {}, "data": {"text/html": markup, "text/plain": text}}


def table_output(df: pd.DataFrame, title: str = "") -> dict:
    """An Output-widget entry showing ``df`` as an HTML table under an optional ``title``."""
    head = f"<h4>{html.escape(title)}</h4>" if title else ""
    return html_output(head + df.to_html(index=False, float_format=lambda v: f"{v:.4g}", border=0),
                       df.to_string(index=False))


def text_output(text: str, name: str = "stdout") -> dict:
    """An Output-widget entry holding ``text`` as a stream (``stdout`` or ``stderr``)."""
    return {"output_type": "stream", "name": name, "text": text}
