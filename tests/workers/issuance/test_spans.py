"""Step spans follow their job's span: recorded under a recorded job, none under any other."""

from __future__ import annotations

from opentelemetry import trace
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

from workers.issuance.spans import group_spans, step_span

_tracer = trace.get_tracer(__name__)


def _sampled_out() -> NonRecordingSpan:
    return NonRecordingSpan(
        SpanContext(trace_id=0x1234, span_id=0x5678, is_remote=True, trace_flags=TraceFlags(0))
    )


def test_steps_under_a_recorded_job_are_its_children(spans: InMemorySpanExporter) -> None:
    with _tracer.start_as_current_span("job") as job:
        with step_span("sign credential", job) as step:
            assert step is not job and step.is_recording()
        with group_spans("db issue", [job, job]):
            pass
    finished = spans.get_finished_spans()
    job_id = job.get_span_context().span_id
    children = [s.name for s in finished if s.parent and s.parent.span_id == job_id]
    assert sorted(children) == ["db issue", "db issue", "sign credential"]


def test_steps_under_a_sampled_out_job_make_no_spans(spans: InMemorySpanExporter) -> None:
    job = _sampled_out()
    with step_span("smtp send", job) as step:
        assert step is job
    with group_spans("db outcome", [job, job]):
        pass
    assert spans.get_finished_spans() == ()


def test_a_failing_group_marks_only_recorded_spans(spans: InMemorySpanExporter) -> None:
    with _tracer.start_as_current_span("job") as job:
        try:
            with group_spans("db issue", [job, _sampled_out()]):
                raise KeyError("x")
        except KeyError:
            pass
    [failed] = [s for s in spans.get_finished_spans() if s.name == "db issue"]
    assert failed.status.description == "KeyError"
