"""A tenant's template cannot take a worker's CPU or memory from other tenants.

The bomb hides behind a condition the creation's trial render does not take (the trial values
are the placeholder names, short); a real row with a long name would reach it.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import grpc
import pytest

from credbatch.catalog.model import EmailTemplate as StoredEmailTemplate
from credbatch.gen.templates.v1 import templates_pb2, templates_service_pb2
from credbatch.templating.runner import RenderPool
from credbatch.templating.sandbox import TemplateProblem
from tests.fixtures.grpc import error_details
from tests.fixtures.templates import REFUSED_WITHIN, make_tenant
from workers.issuance.rendering import EmailTemplate as WorkerEmailTemplate
from workers.issuance.rendering import RenderedEmail

pb = templates_service_pb2
LONG_NAME = "Maximilian Alexander Fitzgerald-Worthington"
CONSTANT_BOMB = "{% if name | length > 20 %}{{ ((((9 ** 64) ** 64) ** 64) ** 16) % 7 }}{% endif %}"
VALUE_BOMB = (
    "{% if name | length > 20 %}{{ ((((name | length + 9) ** 64) ** 64) ** 64) % 7 }}{% endif %}"
)


def _email(html_body: str) -> templates_pb2.EmailTemplate:
    return templates_pb2.EmailTemplate(
        display_name="bomb", subject="Hi {{ name }}", html_body=html_body, text_body="{{ name }}"
    )


async def test_a_constant_bomb_behind_a_condition_is_refused_at_creation(
    templates_stub: Any, settings: Any
) -> None:
    tenant = make_tenant(settings)
    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await templates_stub.CreateEmailTemplate(
            pb.CreateEmailTemplateRequest(email_template=_email(CONSTANT_BOMB)),
            metadata=tenant.admin,
        )
    assert time.monotonic() - started < REFUSED_WITHIN
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    details = error_details(caught.value)
    assert details.bad_request is not None
    [violation] = details.bad_request.field_violations
    assert violation.field == "email_template.html_body"
    assert violation.reason == "TEMPLATE_NUMBER_TOO_LARGE"


async def test_a_bomb_on_a_value_is_accepted_but_fails_fast_where_a_long_name_reaches_it(
    templates_stub: Any, settings: Any, render_pool: RenderPool
) -> None:
    tenant = make_tenant(settings)
    tenant_name = str(tenant.id)
    created = await templates_stub.CreateEmailTemplate(
        pb.CreateEmailTemplateRequest(email_template=_email(VALUE_BOMB)), metadata=tenant.admin
    )

    started = time.monotonic()
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await templates_stub.RenderTemplatePreview(
            pb.RenderTemplatePreviewRequest(
                template=created.name, sample_values={"name": LONG_NAME}
            ),
            metadata=tenant.admin,
        )
    assert time.monotonic() - started < REFUSED_WITHIN
    details = error_details(caught.value)
    assert details.bad_request is not None
    [violation] = details.bad_request.field_violations
    assert (violation.field, violation.reason) == (
        "template.html_body",
        "TEMPLATE_NUMBER_TOO_LARGE",
    )

    # The worker compiles the stored template with its own code and renders each row in its
    # render processes.
    stored = StoredEmailTemplate(
        id=uuid.UUID(created.name.rpartition("/")[2]),
        display_name=created.display_name,
        subject=created.subject,
        html_body=created.html_body,
        text_body=created.text_body,
    )
    worker_template = WorkerEmailTemplate.compile(stored)
    [fine] = await render_pool.render(tenant_name, [worker_template.job({"name": "Ann"})])
    assert isinstance(fine, tuple) and RenderedEmail.of(fine).subject == "Hi Ann"
    started = time.monotonic()
    [problem] = await render_pool.render(tenant_name, [worker_template.job({"name": LONG_NAME})])
    assert time.monotonic() - started < REFUSED_WITHIN
    assert isinstance(problem, TemplateProblem)
    assert problem.code == "TEMPLATE_NUMBER_TOO_LARGE"
