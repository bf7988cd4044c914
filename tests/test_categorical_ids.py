"""``categorical=True``: ids, exercises and families as ``category`` columns, same outputs.

``hipdata.load(..., categorical=True)`` builds the text columns of
:data:`hipdata.dataset.CATEGORICAL_COLUMNS` straight from the loader's codes
(:func:`hipdata.dataset.sorted_categorical`); ``hipdata metrics`` loads that way. Here:

- the fast builder from codes equals the plain expression (``pd.factorize(text, sort=True)``
  of the text column) on edge data (empty, one value, missing values, unused and repeated
  distinct values, unicode and look-alike texts);
- the loaded ``Dataset`` equals the default one column for column once the categoricals are
  turned into text, for CSV and Parquet folders of a hostile cohort (unicode ids, shuffled rows,
  rows to quarantine, both exercise layouts), ``data/demo`` and a one-patient cohort;
- every table of ``compute_all`` is identical (``check_exact``) from either form, also for
  ``Dataset.from_frames(..., categorical=True)`` of shuffled frames, one patient and no sets;
- what a user sees after filtering (unobserved categories) is what the docstring says.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import hipdata
from hipdata.dataset import CATEGORICAL_COLUMNS, as_categorical, sorted_categorical
from hipdata.metrics import compute_all
from hipdata.synth import generate
from tests.io_helpers import lookalike_ids

DEMO = Path(__file__).resolve().parents[1] / "data" / "demo"
TABLES = ("patients", "sets", "activity", "outcomes", "treatments")
REPORTS = ("quarantine", "load_report", "columns")

#: Texts that sort differently by code point, case, accents and digits (look-alikes included).
HOSTILE_TEXTS = ["b", "a", "A", "ä", "a ", " a", "10", "9", "Ü-3", "u", "ß", "日本", "a\u0301", "á"]


def _plain(text: pd.Series) -> pd.Categorical:
    # the expression sorted_categorical replaces: the text column's sorted factorization
    codes, uniques = pd.factorize(text, sort=True)
    return pd.Categorical.from_codes(codes, categories=pd.Index(uniques, dtype="str"))


def _as_text(frame: pd.DataFrame) -> pd.DataFrame:
    """The categorical columns back as text (``str``), every other column as it is."""
    return frame.assign(
        **{
            c: frame[c].astype("str")
            for c in frame.columns
            if isinstance(frame[c].dtype, pd.CategoricalDtype)
        }
    )


@pytest.mark.parametrize(
    "values",
    [
        [],
        ["only"],
        [None, None],
        HOSTILE_TEXTS,
        HOSTILE_TEXTS[::-1] + [None] + HOSTILE_TEXTS,
    ],
)
def test_sorted_categorical_of_text_equals_the_sorted_factorization(values):
    text = pd.Series(values, dtype="str")
    built = sorted_categorical(text)
    plain = _plain(text)
    assert list(built.categories) == list(plain.categories) == sorted(set(text.dropna()))
    np.testing.assert_array_equal(built.codes, plain.codes)
    assert built.categories.dtype == "str" and not built.ordered
    pd.testing.assert_series_equal(
        pd.Series(built).astype("str"), text, check_exact=True, check_names=False
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_sorted_categorical_from_codes_equals_the_text_it_stands_for(seed):
    rng = np.random.default_rng(seed)
    # distinct values with repeats (two raw names of one set type), a missing one, and
    # values no row uses (ids whose rows were all quarantined)
    values = pd.Index([*HOSTILE_TEXTS, "b", "A", None, "unused-1", "unused-2"], dtype="str")
    used = len(values) - 2
    n = int(rng.integers(0, 200))
    codes = rng.integers(-1, used, n)
    built = sorted_categorical(values, codes)
    text = pd.Series(np.asarray(values, dtype=object)[codes], dtype="str")
    text[codes < 0] = np.nan
    plain = _plain(text)
    assert list(built.categories) == list(plain.categories)  # only the values present, sorted
    assert "unused-1" not in built.categories
    np.testing.assert_array_equal(built.codes, plain.codes)
    pd.testing.assert_series_equal(
        pd.Series(built).astype("str"), text, check_exact=True, check_names=False
    )
    # no rows at all, or no distinct values
    assert len(sorted_categorical(values, codes[:0]).categories) == 0
    empty = sorted_categorical(pd.Index([], dtype="str"), np.full(3, -1))
    assert empty.isna().all() and len(empty.categories) == 0


def test_as_categorical_rebuilds_unsorted_categoricals():
    frame = pd.DataFrame(
        {"patient_id": pd.Categorical(["b", "a", "b"], categories=["z", "b", "a"], ordered=True)}
    )
    out = as_categorical(frame, ["patient_id", "absent"])["patient_id"]
    assert list(out.cat.categories) == ["a", "b"] and not out.cat.ordered
    assert out.astype("str").tolist() == ["b", "a", "b"]
    # columns that are not text (integer ids of trusted frames) are left as they are
    numbers = pd.DataFrame({"clinician_id": [3, 1], "clinic_id": pd.Categorical([2, 1])})
    pd.testing.assert_frame_equal(
        as_categorical(numbers, ["clinician_id", "clinic_id"]), numbers, check_exact=True
    )


def _hostile_tables(seed: int, n_patients: int = 40) -> dict[str, pd.DataFrame]:
    """A synthetic cohort's input tables made hostile: unicode and look-alike ids, shuffled
    rows, a warm-up set type written two ways, rows the loader quarantines (an unknown patient,
    an empty exercise, an impossible pain), a patient whose every set is quarantined."""
    cohort = generate(n_patients, seed=seed)
    tables = {name: table.copy() for name, table in cohort.tables.items()}
    rng = np.random.default_rng(seed)
    lookalike_ids(tables, ("patients", "exercises", "activity", "outcomes", "treatments"))
    sets = tables["exercises"].astype({"pain_during": "object", "exercise": "object"})
    sets["set_type"] = rng.choice(["work", "Warm-up", "warmup", ""], len(sets))
    sets.loc[sets.index[:3], "patient_id"] = "nobody"
    sets.loc[sets.index[3:5], "exercise"] = ""
    sets.loc[sets.index[5:7], "pain_during"] = "11"
    # every set of the last patient quarantined: its id is coded but used by no kept row
    last = tables["patients"]["patient_id"].iloc[-1]
    sets.loc[sets["patient_id"] == last, "pain_during"] = "12"
    for name in tables:
        tables[name] = tables[name].iloc[rng.permutation(len(tables[name]))]
    tables["exercises"] = sets.iloc[rng.permutation(len(sets))]
    return tables


def _write(tables: dict[str, pd.DataFrame], folder: Path, fmt: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, frame in tables.items():
        if fmt == "csv":
            frame.to_csv(folder / f"{name}.csv", index=False)
        else:
            frame.astype({c: "str" for c in frame.columns if frame[c].dtype == object}).to_parquet(
                folder / f"{name}.parquet", index=False
            )
    return folder


def _check_same(
    default: hipdata.Dataset, categorical: hipdata.Dataset, *, strict: bool = True
) -> None:
    """Same values (and dtypes, but the categoricals'); ``strict=False`` for trusted frames
    (``validate=False``) and empty tables, where the default form keeps ``object`` text columns."""
    for name in TABLES + REPORTS:
        left = getattr(default, name)
        if (not strict or not len(left)) and name in CATEGORICAL_COLUMNS:
            objects = [c for c in CATEGORICAL_COLUMNS[name] if left[c].dtype == object]
            left = left.astype(dict.fromkeys(objects, "str"))
        pd.testing.assert_frame_equal(
            left, _as_text(getattr(categorical, name)), check_exact=True, obj=name
        )
    for table, columns in CATEGORICAL_COLUMNS.items():
        frame = getattr(categorical, table)
        for column in columns:
            values = frame[column]
            assert isinstance(values.dtype, pd.CategoricalDtype), (table, column)
            categories = values.cat.categories
            assert categories.dtype == "str" and not values.cat.ordered
            # sorted, and only the texts present (so the codes sort and group like the text)
            assert list(categories) == sorted(set(values.dropna().astype("str")))
    assert default.summary() == categorical.summary()
    plain, coded = compute_all(default), compute_all(categorical)
    for name in plain:
        pd.testing.assert_frame_equal(plain[name], coded[name], check_exact=True, obj=name)
        assert not any(isinstance(d, pd.CategoricalDtype) for d in coded[name].dtypes)


@pytest.fixture(scope="module")
def hostile_tables():
    return _hostile_tables(7)


@pytest.mark.parametrize("fmt", ["csv", "parquet"])
def test_loaded_categorical_dataset_equals_the_default_one(hostile_tables, fmt, tmp_path):
    folder = _write(hostile_tables, tmp_path / fmt, fmt)
    default = hipdata.load(folder, today="2030-01-01")
    categorical = hipdata.load(folder, today="2030-01-01", categorical=True)
    assert len(default.quarantine) >= 7  # the planted bad rows were quarantined
    sets = hostile_tables["exercises"]
    last = sets.loc[sets["pain_during"] == "12", "patient_id"].iloc[0]  # all its sets quarantined
    assert (sets.loc[sets["patient_id"] == last, "pain_during"] == "12").all()
    assert last in set(categorical.patients["patient_id"])
    assert last not in set(categorical.sets["patient_id"].cat.categories)
    _check_same(default, categorical)


def test_sets_layout_and_one_patient(hostile_tables, tmp_path):
    # one row per exercise with the number of sets (the other layout), and one patient only
    tables = {k: v.copy() for k, v in hostile_tables.items()}
    one = tables["patients"]["patient_id"].iloc[0]
    tables = {k: v[v["patient_id"] == one] for k, v in tables.items()}
    sets = tables["exercises"].drop(columns=["set"])
    tables["exercises"] = sets.assign(sets=2)
    folder = _write(tables, tmp_path / "one", "csv")
    _check_same(
        hipdata.load(folder, today="2030-01-01"),
        hipdata.load(folder, today="2030-01-01", categorical=True),
    )


def test_demo_data():
    _check_same(hipdata.load(DEMO), hipdata.load(DEMO, categorical=True))


@pytest.mark.parametrize("cohort", ["shuffled", "one_patient", "no_sets"])
def test_from_frames_categorical(hostile_tables, cohort):
    tables = {k: v[v["patient_id"] != "nobody"] for k, v in hostile_tables.items()}
    sets = tables["exercises"]
    sets = sets[(sets["exercise"] != "") & (pd.to_numeric(sets["pain_during"]) <= 10)]
    if cohort == "one_patient":
        one = tables["patients"]["patient_id"].iloc[0]
        tables = {k: v[v["patient_id"] == one] for k, v in tables.items()}
        sets = sets[sets["patient_id"] == one]
    elif cohort == "no_sets":
        sets = sets.iloc[:0]
    frames = dict(activity=tables["activity"], outcomes=tables["outcomes"], validate=False)
    default = hipdata.Dataset.from_frames(tables["patients"], sets, **frames)
    categorical = hipdata.Dataset.from_frames(tables["patients"], sets, **frames, categorical=True)
    _check_same(default, categorical, strict=False)
    # validated frames (the loader's path) and with_categorical of a loaded dataset
    validated = hipdata.Dataset.from_frames(tables["patients"], sets, today="2030-01-01")
    _check_same(
        validated,
        hipdata.Dataset.from_frames(tables["patients"], sets, today="2030-01-01", categorical=True),
    )
    _check_same(validated, validated.with_categorical())


def test_what_a_user_sees_after_filtering():
    ds = hipdata.load(DEMO, categorical=True)
    first = ds.sets["patient_id"].iloc[0]
    some = ds.sets[ds.sets["patient_id"] == first]  # a comparison with text works as on str
    assert len(some) == (hipdata.load(DEMO).sets["patient_id"] == first).sum() > 0
    n_ids = ds.sets["patient_id"].nunique()
    # pandas' default groupby (observed=True) gives the observed ids only ...
    assert len(some.groupby("patient_id")["set"].size()) == 1
    # ... observed=False and value_counts list every id of the whole cohort, with 0 rows
    assert len(some.groupby("patient_id", observed=False)["set"].size()) == n_ids
    assert (some["patient_id"].value_counts() == 0).sum() == n_ids - 1
    assert len(some["patient_id"].cat.remove_unused_categories().cat.categories) == 1
    # .astype("str") gives the default form
    assert some["patient_id"].astype("str").dtype == "str"


@pytest.mark.parametrize("workers", [1, 2])
def test_hipdata_metrics_loads_categorical_and_writes_the_default_bytes(
    hostile_tables, workers, tmp_path, monkeypatch
):
    from typer.testing import CliRunner

    from hipdata.cli import app
    from hipdata.io import loader
    from hipdata.metrics import write_tables

    folder = _write(hostile_tables, tmp_path / "in", "csv")
    calls = []
    original = loader.load

    def spy(*args, **kwargs):
        calls.append(kwargs.get("categorical", False))
        return original(*args, **kwargs)

    monkeypatch.setattr(loader, "load", spy)
    out = tmp_path / "out"
    options = ["--workers", "2", "--chunk-rows", "2000"] if workers == 2 else ["--workers", "1"]
    result = CliRunner().invoke(app, ["metrics", str(folder), "--out", str(out), *options])
    assert result.exit_code == 0, result.output
    if workers == 1:  # the chunk workers are other processes: the spy sees the parent only
        assert calls == [True]
    expected = write_tables(compute_all(original(folder)), tmp_path / "expected")
    for name, path in expected.items():
        if name != "family_sessions":  # not written by the command
            assert (out / path.name).read_bytes() == path.read_bytes(), name
