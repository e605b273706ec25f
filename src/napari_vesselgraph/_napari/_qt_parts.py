"""Small Qt parts the dock widgets build their forms from (a word-wrapped label, a spin box, a text field, a
path field with its Browse button), each set up in one call."""

from __future__ import annotations

from qtpy.QtCore import Qt
from qtpy.QtWidgets import QHBoxLayout, QLabel, QLineEdit, QPushButton, QSpinBox


def wrapped_label(text: str = "", *, rich: bool = False, tip: str | None = None) -> QLabel:
    """A word-wrapped label (rich text when ``rich``), with tooltip ``tip``."""
    label = QLabel(text)
    label.setWordWrap(True)
    if rich:
        label.setTextFormat(Qt.TextFormat.RichText)
    if tip:
        label.setToolTip(tip)
    return label


def spin_box(lo: int, hi: int, value: int, tip: str, suffix: str = "") -> QSpinBox:
    """An integer spin box from ``lo`` to ``hi`` showing ``value``, with tooltip ``tip`` and ``suffix``."""
    spin = QSpinBox()
    spin.setRange(lo, hi)
    spin.setValue(value)
    if suffix:
        spin.setSuffix(suffix)
    spin.setToolTip(tip)
    return spin


def line_edit(placeholder: str, tip: str) -> QLineEdit:
    """A text field showing ``placeholder`` while empty, with tooltip ``tip``."""
    edit = QLineEdit()
    edit.setPlaceholderText(placeholder)
    edit.setToolTip(tip)
    return edit


def browse_row(edit: QLineEdit, on_browse) -> QHBoxLayout:
    """A row of the path field ``edit`` (stretching) and a *Browse…* button that calls ``on_browse``."""
    browse = QPushButton("Browse…")
    browse.clicked.connect(on_browse)
    row = QHBoxLayout()
    row.addWidget(edit, 1)
    row.addWidget(browse)
    return row
