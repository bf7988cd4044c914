"""Patient flow: enrolled -> treated -> discharged by reason -> follow-up questionnaire.

:func:`patient_flow` counts each stage from the patients, sessions and outcome_change tables
(unsuppressed). :data:`FLOW_LINES` are the additive identities between the stages, which a
reader of a published flow knows and which disclosure control must therefore respect
(:func:`hipdata.disclosure.suppress`).
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

__all__ = ["FLOW_LINES", "FLOW_STAGES", "patient_flow"]

#: Stages of the patient flow: (key, label, parent key).
FLOW_STAGES = (
    ("enrolled", "Enrolled (start of care in the report's range)", None),
    ("not_treated", "No exercise session recorded", "enrolled"),
    ("treated", "Treated (at least one session)", "enrolled"),
    ("completed", "Discharged: completed", "treated"),
    ("dropped_out", "Discharged: dropped out", "treated"),
    ("referred", "Discharged: referred (injection or surgery)", "treated"),
    ("other", "Discharged: other or reason not recorded", "treated"),
    ("in_care", "Still in care", "treated"),
    ("followup", "Discharged with a follow-up questionnaire", "treated"),
    ("no_followup", "Discharged without a follow-up questionnaire", "treated"),
)
#: The flow's additive lines, (total, members): every patient is in exactly one member.
FLOW_LINES = (
    ("enrolled", ("treated", "not_treated")),
    ("treated", ("completed", "dropped_out", "referred", "other", "in_care")),
    ("treated", ("followup", "no_followup", "in_care")),
)
#: Discharge reasons counted as a referral.
REFERRAL_REASONS = ("referred_injection", "referred_surgery")


def patient_flow(tables: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Counts of the patient flow, one row per stage of :data:`FLOW_STAGES` (unsuppressed).

    Treated = at least one row in ``sessions``. Among the treated, each patient is in exactly one
    of completed / dropped out / referred (:data:`REFERRAL_REASONS`) / other (any other or no
    discharge reason, with a discharge date) / still in care (no discharge date), and each
    discharged patient either has a follow-up score of any measure in ``outcome_change`` or not.

    Parameters
    ----------
    tables : dict of DataFrame
        ``patients``, ``sessions`` and ``outcome_change`` (e.g. a report context's
        ``ctx.tables``, or :func:`hipdata.metrics.compute_all` plus ``patients``).

    Returns
    -------
    DataFrame
        ``stage, label, parent, n``.
    """
    patients = tables["patients"]
    change = tables["outcome_change"]
    treated = patients["patient_id"].isin(tables["sessions"]["patient_id"])
    discharged = patients["discharge_date"].notna()
    reason = patients["discharge_reason"].astype("object")
    with_followup = patients["patient_id"].isin(
        change.loc[change["followup"].notna(), "patient_id"]
    )
    t, d = treated, treated & discharged
    completed = d & reason.eq("completed")
    dropped = d & reason.eq("dropped_out")
    referred = d & reason.isin(list(REFERRAL_REASONS))
    counts = {
        "enrolled": len(patients),
        "not_treated": int((~t).sum()),
        "treated": int(t.sum()),
        "completed": int(completed.sum()),
        "dropped_out": int(dropped.sum()),
        "referred": int(referred.sum()),
        "other": int((d & ~completed & ~dropped & ~referred).sum()),
        "in_care": int((t & ~discharged).sum()),
        "followup": int((d & with_followup).sum()),
        "no_followup": int((d & ~with_followup).sum()),
    }
    return pd.DataFrame(
        [(key, label, parent, counts[key]) for key, label, parent in FLOW_STAGES],
        columns=["stage", "label", "parent", "n"],
    )
