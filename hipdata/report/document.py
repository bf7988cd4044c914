"""A report as a list of blocks, shown in a notebook and rendered to PDF from the same objects.

The notebooks build a :class:`Document` section by section: each ``doc.add(...)`` displays the
block in the notebook (when running under IPython) and keeps it, and ``doc.save_pdf(path)``
lays the same blocks out with :class:`~hipdata.report.pdf.ReportPDF`. So the PDF and the executed
notebook (and its HTML) always show the same figures and tables.

Tables given to a document are display tables: already formatted as strings and already
through disclosure control (:mod:`hipdata.disclosure`).

In the notebook (and so in its HTML export) every text is HTML-escaped before it is shown:
headings, paragraphs, bullets, captions and notes may carry data-borne values (clinic ids,
labels), which must never reach a browser as markup.
"""

from __future__ import annotations

import datetime as dt
import html
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from matplotlib.figure import Figure

from hipdata.report.pdf import ReportPDF


@dataclass
class Heading:
    text: str
    level: int = 1


@dataclass
class Paragraph:
    text: str


@dataclass
class Bullets:
    items: list[str]


@dataclass
class Table:
    data: pd.DataFrame
    caption: str | None = None
    note: str | None = None
    landscape: bool = False


@dataclass
class FigureBlock:
    figure: Figure
    caption: str | None = None
    width_mm: float = 160.0


@dataclass
class Definitions:
    rows: pd.DataFrame
    caption: str | None = None


@dataclass
class PageBreak:
    orientation: str | None = None


Block = Heading | Paragraph | Bullets | Table | FigureBlock | Definitions | PageBreak


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with jupyterlab
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def block_html(block: Block) -> str | None:
    """The HTML a block is shown as in a notebook, every text escaped (figures: None).

    >>> block_html(Paragraph("clinic <script>alert(9)</script>"))
    '<p>clinic &lt;script&gt;alert(9)&lt;/script&gt;</p>'
    """
    escape = html.escape
    if isinstance(block, Heading):
        level = min(block.level + 2, 6)  # the notebook's own Markdown headings are h2
        return f"<h{level}>{escape(block.text)}</h{level}>"
    if isinstance(block, Paragraph):
        return f"<p>{escape(block.text)}</p>"
    if isinstance(block, Bullets):
        return "<ul>" + "".join(f"<li>{escape(str(item))}</li>" for item in block.items) + "</ul>"
    if isinstance(block, Table | Definitions):
        frame = block.rows if isinstance(block, Definitions) else block.data
        parts = [f"<p><b>{escape(block.caption)}</b></p>"] if block.caption else []
        parts.append(frame.to_html(index=False, escape=True))
        if isinstance(block, Table) and block.note:
            parts.append(f"<p><i>{escape(block.note)}</i></p>")
        return "".join(parts)
    if isinstance(block, FigureBlock):
        return None
    return ""


def _show(block: Block) -> None:
    from IPython.display import HTML, display

    if isinstance(block, FigureBlock):
        display(block.figure)
        if block.caption:
            display(HTML(f"<p><i>{html.escape(block.caption)}</i></p>"))
        return
    text = block_html(block)
    if text:
        display(HTML(text))


@dataclass
class Document:
    """An ordered report: title fields plus blocks.

    Parameters
    ----------
    title, subtitle : str
        Shown in the PDF's title block (and the running header).
    fields : dict
        Title-block fields (clinic, quarter, generation date, version, input hash, parameters).
    generated : date
        The generation date; also the PDF's creation date, so output is reproducible.
    """

    title: str
    subtitle: str
    fields: dict[str, str]
    generated: dt.date
    blocks: list[Block] = field(default_factory=list)
    show: bool = field(default_factory=_in_notebook)
    #: Printed on every page (e.g. "internal — not for circulation"); None for none.
    banner: str | None = None

    def add(self, *blocks: Block) -> None:
        """Append blocks (and display them when running in a notebook)."""
        for block in blocks:
            if isinstance(block, FigureBlock):
                import matplotlib.pyplot as plt

                plt.close(block.figure)  # keep pyplot from showing it a second time
            self.blocks.append(block)
            if self.show:
                _show(block)

    def heading(self, text: str, level: int = 1) -> None:
        self.add(Heading(text, level))

    def paragraph(self, text: str) -> None:
        self.add(Paragraph(text))

    def bullets(self, items: list[str]) -> None:
        self.add(Bullets(list(items)))

    def table(
        self,
        data: pd.DataFrame,
        caption: str | None = None,
        note: str | None = None,
        *,
        landscape: bool = False,
    ) -> None:
        self.add(Table(data, caption, note, landscape))

    def figure(
        self, figure: Figure, caption: str | None = None, *, width_mm: float = 160.0
    ) -> None:
        self.add(FigureBlock(figure, caption, width_mm))

    def definitions(self, rows: pd.DataFrame, caption: str | None = None) -> None:
        self.add(Definitions(rows, caption))

    def page_break(self) -> None:
        self.add(PageBreak())

    def text(self) -> str:
        """All the document's words (headings, paragraphs, table cells) for checks."""
        parts = [self.title, self.subtitle, *map(str, self.fields.values())]
        if self.banner:
            parts.insert(0, self.banner)
        for block in self.blocks:
            if isinstance(block, Heading | Paragraph):
                parts.append(block.text)
            elif isinstance(block, Bullets):
                parts.extend(block.items)
            elif isinstance(block, Table):
                parts.append(block.data.to_csv(index=False))
            elif isinstance(block, Definitions):
                parts.append(block.rows.to_csv(index=False))
        return "\n".join(parts)

    def to_pdf(self) -> ReportPDF:
        report = ReportPDF(self.title, generated=self.generated, banner=self.banner)
        report.title_block(self.title, self.subtitle, self.fields)
        for block in self.blocks:
            if isinstance(block, Heading):
                report.heading(block.text, block.level)
            elif isinstance(block, Paragraph):
                report.paragraph(block.text)
            elif isinstance(block, Bullets):
                report.bullets(block.items)
            elif isinstance(block, Table):
                if block.landscape:
                    report.page_break(orientation="landscape")
                report.table(block.data, caption=block.caption, note=block.note)
                if block.landscape:
                    report.page_break(orientation="portrait")
            elif isinstance(block, FigureBlock):
                report.figure(
                    block.figure, caption=block.caption, width_mm=block.width_mm, close=False
                )
            elif isinstance(block, Definitions):
                report.definitions(block.rows, caption=block.caption)
            elif isinstance(block, PageBreak):
                report.page_break(orientation=block.orientation)
        return report

    def save_pdf(self, path: str | Path) -> Path:
        """Write the PDF atomically; the same document gives byte-identical files."""
        return self.to_pdf().save(path)
