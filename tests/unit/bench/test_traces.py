"""Trace loading: the real Azure files, the CSV parser's errors, synthetic shapes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_operator.bench.traces import TraceFormatError, load_csv, synthetic

AZURE = Path(__file__).resolve().parents[3].parent / "shared/upstream/traces/azure"


@pytest.mark.parametrize(
    ("name", "rows", "span"), [("code", 8819, 3435.9), ("conv", 19366, 3501.7)]
)
def test_azure_traces_load_with_their_published_statistics(
    name: str, rows: int, span: float
) -> None:
    trace = load_csv(AZURE / f"AzureLLMInferenceTrace_{name}.csv")
    assert len(trace.requests) == rows
    assert trace.duration == pytest.approx(span, abs=0.1)
    assert trace.requests[0].at == 0.0


def test_time_scale_stretches(tmp_path: Path) -> None:
    trace = synthetic("step", seconds=60)
    slow = trace.scaled(2.0)
    assert slow.duration == pytest.approx(2 * trace.duration)
    with pytest.raises(ValueError, match="time scale: 0 must be > 0"):
        trace.scaled(0)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("when,prompt_tokens,output_tokens\n1,2,3\n", "no timestamp column"),
        ("timestamp,prompt_tokens\n1,2\n", "no output-token column"),
        ("timestamp,prompt_tokens,output_tokens\n1,abc,3\n", ":2: invalid literal"),
        ("timestamp,prompt_tokens,output_tokens\n1,-2,3\n", ":2: negative token count"),
        ("timestamp,prompt_tokens,output_tokens\n", "no requests"),
    ],
)
def test_bad_csv_names_the_problem(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "t.csv"
    path.write_text(text)
    with pytest.raises(TraceFormatError, match=message):
        load_csv(path)


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.floats(0, 1e6, allow_nan=False), st.integers(0, 10**6), st.integers(0, 10**5)),
        min_size=1,
        max_size=40,
    )
)
def test_csv_round_trip(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[float, int, int]]
) -> None:
    path = tmp_path_factory.mktemp("csv") / "t.csv"
    path.write_text(
        "timestamp,prompt_tokens,output_tokens\n" + "".join(f"{t!r},{p},{o}\n" for t, p, o in rows)
    )
    trace = load_csv(path)
    t0 = min(t for t, _, _ in rows)
    assert [r.at for r in trace.requests] == sorted(t - t0 for t, _, _ in rows)
    assert all(r.prompt_tokens >= 1 and r.output_tokens >= 1 for r in trace.requests)


@pytest.mark.parametrize("kind", ["step", "spike", "ramp", "idle-gap"])
def test_synthetic_shapes(kind: str) -> None:
    trace = synthetic(kind)
    assert 2000 < trace.duration <= 3600
    assert len(trace.requests) > 5000
    with pytest.raises(ValueError, match="not one of"):
        synthetic("nope")
