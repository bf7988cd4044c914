"""What every section of the cohort report shares: headings, labels, small helpers."""

from __future__ import annotations

import matplotlib.pyplot as plt
from matplotlib.figure import Figure

from hipdata.disclosure import suppression_note
from hipdata.outcome_measures import Measure
from hipdata.protocol import RESPONDER_RULE_TEXT
from hipdata.report.format import format_count

#: Section headings, in report order (the tests and the notebook use them).
SECTION_TITLES = {
    "patient_flow": "1. Patient flow",
    "table_one": "2. Patients by clinic (Table 1)",
    "dose_volume": "3. Training dose and volume",
    "pain_trajectory": "4. Pain over the weeks of care",
    "pain_response": "5. Pain response to rises in volume",
    "progression": "6. Progression along the exercise ladders",
    "adherence": "7. Adherence",
    "outcomes": "8. Outcomes and responders",
    "association": "9. Adherence and outcome",
    "data_quality": "10. Data quality",
    "definitions": "Appendix: definitions",
}
REPORT_TITLE = "Cohort report"
#: Average days in a calendar month (365.25 / 12), to turn weekly slopes into monthly ones.
DAYS_PER_MONTH = 365.25 / 12
#: Label of the all-clinics column and row.
ALL_CLINICS = "All"

__all__ = [
    "ALL_CLINICS",
    "DAYS_PER_MONTH",
    "REPORT_TITLE",
    "SECTION_TITLES",
    "mcid_text",
    "new_figure",
    "suppression_note",
]


def new_figure(width: float = 7.0, height: float = 4.2) -> tuple[Figure, plt.Axes]:
    """A figure of the report's width with constrained layout, and its axes."""
    figure, ax = plt.subplots(figsize=(width, height), layout="constrained")
    return figure, ax


def plain_count(value, k: int) -> str:
    """A count inside a sentence (primary suppression only)."""
    return format_count(value, k)


def mcid_text(measure: Measure, rule: str = "or") -> str:
    """``"NPRS pain (0-10) 2 or 30%"``: a measure's MCIDs joined by the responder rule."""
    text = f"{measure.label or measure.name} {measure.mcid_points:g}"
    if measure.mcid_pct is not None:
        text += f" {rule} {measure.mcid_pct:g}%"
    return text


def rule_text(rule: str) -> str:
    """How a responder rule reads: ``"either MCID suffices"``."""
    return RESPONDER_RULE_TEXT[rule]


def measure_decimals(measure: Measure) -> int:
    """Decimals a measure's scores are printed with (2 on a 0-1 or 0-2 scale, else 1)."""
    return 2 if (measure.high - measure.low) <= 2 else 1


def measures_present(ctx) -> list[str]:
    """The context's measures that have rows in ``outcome_change``, in registry order."""
    present = set(ctx.tables["outcome_change"]["measure"])
    return [name for name in ctx.measures if name in present]
