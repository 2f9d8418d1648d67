"""Request rules of an upload: checked on the header, before a byte of the file is read.

``check_request`` needs nothing but the header and the caller; ``resolve`` then looks the
schema and templates up in the caller's tenant (row-level security hides the others, so a
foreign id is simply not found) and checks that they fit together.
"""

from __future__ import annotations

import math
import uuid

import asyncpg

from credbatch import names
from credbatch.auth.roles import ADMINS, DEFAULT_DEPARTMENT
from credbatch.batches.claim_mode import ClaimMode
from credbatch.catalog import repository as catalog
from credbatch.catalog.checks import compile_certificate, compile_email, compile_sms
from credbatch.db.idempotency import request_id_violation
from credbatch.errors import FieldViolation, InvalidArgument, PermissionDenied
from credbatch.schema.model import Medium
from credbatch.templating.channels import Message, batch_violations
from credbatch.templating.placeholders import check_placeholders
from credbatch.templating.sandbox import CompiledTemplate
from credbatch.tenancy import TenantScope
from credbatch.tenants.validation import reminder_violations
from services.uploads.look_up import HeaderRows
from services.uploads.model import CheckedRequest, ResolvedUpload, UploadRequest

MAX_FILENAME_CHARS = 255


def _template_id(
    name: str, collection: str, field: str, violations: list[FieldViolation]
) -> uuid.UUID | None:
    """The id of an optional template name; a bad name adds its violation."""
    if not name:
        return None
    try:
        return names.parse_name(name, collection, field)
    except InvalidArgument as error:
        violations.extend(error.violations)
        return None


def _department(request: UploadRequest, caller: TenantScope) -> str:
    own = caller.departments
    if not own and caller.roles & ADMINS:
        # org_admin and service may upload into any department (row-level security lets
        # them); without a department of their own, their batches go to the default one.
        own = (DEFAULT_DEPARTMENT,)
    if not own:
        raise PermissionDenied(
            "the caller's token names no department, so it cannot upload: an issuer uploads "
            "only into its own departments (token claim `departments`)",
            reason="NO_DEPARTMENT",
        )
    if not request.department:
        return own[0]
    if request.department not in own:
        raise PermissionDenied(
            "header.department is not one of the caller's departments",
            reason="DEPARTMENT_NOT_ALLOWED",
            violations=[
                FieldViolation(
                    "header.department",
                    f"must be one of the caller's departments: {', '.join(own)}",
                    "DEPARTMENT_NOT_ALLOWED",
                )
            ],
        )
    return request.department


def check_request(request: UploadRequest, caller: TenantScope) -> CheckedRequest:
    """Apply every rule that needs no database; all problems are reported together.

    Raises:
        InvalidArgument: with one violation per problem.
        PermissionDenied: the department is not one of the caller's.
    """
    violations: list[FieldViolation] = []
    schema_id: uuid.UUID | None = None
    version: int | None = None
    try:
        schema_id, version = names.parse_schema_name(request.schema, "header.schema")
    except InvalidArgument as error:
        violations.extend(error.violations)

    mediums: set[Medium] = set()
    if not request.mediums:
        violations.append(
            FieldViolation("header.mediums", "needs MEDIUM_EMAIL, MEDIUM_SMS or both", "REQUIRED")
        )
    for i, medium in enumerate(request.mediums):
        if medium is None:
            violations.append(
                FieldViolation(
                    f"header.mediums[{i}]", "must be MEDIUM_EMAIL or MEDIUM_SMS", "INVALID_MEDIUM"
                )
            )
        elif medium in mediums:
            violations.append(
                FieldViolation(f"header.mediums[{i}]", "is repeated", "DUPLICATE_MEDIUM")
            )
        else:
            mediums.add(medium)

    email_id = _template_id(
        request.email_template, names.EMAIL_TEMPLATES, "header.email_template", violations
    )
    sms_id = _template_id(
        request.sms_template, names.SMS_TEMPLATES, "header.sms_template", violations
    )
    certificate_id = _template_id(
        request.certificate_template,
        names.CERTIFICATE_TEMPLATES,
        "header.certificate_template",
        violations,
    )
    reminder_email_id = _template_id(
        request.reminder_email_template,
        names.EMAIL_TEMPLATES,
        "header.reminder_email_template",
        violations,
    )
    reminder_sms_id = _template_id(
        request.reminder_sms_template,
        names.SMS_TEMPLATES,
        "header.reminder_sms_template",
        violations,
    )
    violations.extend(reminder_violations(request.reminder_days, "header.reminder_days"))
    for field, given, medium in (
        ("header.reminder_email_template", request.reminder_email_template, Medium.EMAIL),
        ("header.reminder_sms_template", request.reminder_sms_template, Medium.SMS),
    ):
        if given and medium not in mediums:
            violations.append(
                FieldViolation(
                    field,
                    f"a reminder template is only allowed with MEDIUM_{medium.value}",
                    "TEMPLATE_WITHOUT_MEDIUM",
                )
            )
    if request.email_template and Medium.EMAIL not in mediums:
        violations.append(
            FieldViolation(
                "header.email_template",
                "an email template is only allowed with MEDIUM_EMAIL",
                "TEMPLATE_WITHOUT_MEDIUM",
            )
        )
    if request.sms_template and Medium.SMS not in mediums:
        violations.append(
            FieldViolation(
                "header.sms_template",
                "an SMS template is only allowed with MEDIUM_SMS",
                "TEMPLATE_WITHOUT_MEDIUM",
            )
        )

    filename = request.filename.strip()
    if len(filename) > MAX_FILENAME_CHARS or any(ord(c) < 0x20 for c in filename):
        violations.append(
            FieldViolation(
                "header.filename",
                f"at most {MAX_FILENAME_CHARS} characters, without control characters",
                "INVALID_FILENAME",
            )
        )
    request_id_problem = request_id_violation(request.request_id, "header.request_id")
    if request_id_problem is not None:
        violations.append(request_id_problem)
    validity: int | None = None
    seconds = request.credential_validity_seconds
    if seconds is not None:
        if not math.isfinite(seconds) or seconds < 1 or seconds != int(seconds):
            violations.append(
                FieldViolation(
                    "header.credential_validity",
                    "must be a positive whole number of seconds",
                    "INVALID_DURATION",
                )
            )
        else:
            validity = int(seconds)

    if request.claim_mode is None:
        violations.append(
            FieldViolation(
                "header.claim_mode",
                "must be CLAIM_MODE_OID4VCI or CLAIM_MODE_DOWNLOAD",
                "INVALID_CLAIM_MODE",
            )
        )

    if violations:
        raise InvalidArgument(
            f"the upload header is invalid ({len(violations)} problems)",
            reason="INVALID_UPLOAD_HEADER",
            violations=violations,
        )
    department = _department(request, caller)
    assert schema_id is not None
    return CheckedRequest(
        schema_id=schema_id,
        schema_version=version,
        mediums=frozenset(mediums),
        email_template_id=email_id,
        sms_template_id=sms_id,
        certificate_template_id=certificate_id,
        filename=filename,
        request_id=request.request_id or None,
        validate_only=request.validate_only,
        department=department,
        validity_seconds=validity,
        claim_mode=request.claim_mode or ClaimMode.OID4VCI,
        reminder_days=tuple(request.reminder_days),
        reminder_email_template_id=reminder_email_id,
        reminder_sms_template_id=reminder_sms_id,
    )


async def resolve(
    conn: asyncpg.Connection, checked: CheckedRequest, found: HeaderRows | None = None
) -> ResolvedUpload:
    """Look the schema and templates up in the caller's tenant and check they fit.

    The tenant's default email/SMS template is used when none is named; a default is
    stored on first use, as the batch refers to it. ``found``: what ``look_up.read_header``
    read in this transaction; only what it did not find is read here.

    Raises:
        NotFound: the schema or a named template does not exist in the tenant.
        InvalidArgument: the certificate template is missing or not allowed, a template
            uses placeholders the schema does not provide, or the templates would send the
            wallet code with the link to its offer (or not send one of them).
    """
    if found is None:
        stored = await catalog.get_schema(conn, checked.schema_id, checked.schema_version)
    elif found.schema is None:
        raise catalog.schema_not_found()
    else:
        stored = found.schema
    schema = stored.schema
    compiled: dict[str, CompiledTemplate] = {}
    violations: list[FieldViolation] = []

    email_id = sms_id = certificate_id = None
    email_message = sms_message = None
    if Medium.EMAIL in checked.mediums:
        email = found.email if found is not None else None
        if email is None:
            email = await catalog.use_email_template(conn, checked.email_template_id)
        email_id = email.id
        fields = compile_email(email, "header.email_template").fields("header.email_template")
        compiled.update(fields)
        email_message = Message("email", "header.email_template", email.display_name, fields)
    if Medium.SMS in checked.mediums:
        sms = found.sms if found is not None else None
        if sms is None:
            sms = await catalog.use_sms_template(conn, checked.sms_template_id)
        sms_id = sms.id
        fields = compile_sms(sms, "header.sms_template").fields("header.sms_template")
        compiled.update(fields)
        sms_message = Message("SMS", "header.sms_template", sms.display_name, fields)
    # Reminder templates are checked as the invitation templates are, against the same schema
    # and with the same mediums (a reminder carries the same links and code).
    reminder_email = reminder_sms = None
    if checked.reminder_email_template_id is not None:
        stored_email = await catalog.get_email_template(conn, checked.reminder_email_template_id)
        field = "header.reminder_email_template"
        fields = compile_email(stored_email, field).fields(field)
        compiled.update(fields)
        reminder_email = Message("email", field, stored_email.display_name, fields)
    if checked.reminder_sms_template_id is not None:
        stored_sms = await catalog.get_sms_template(conn, checked.reminder_sms_template_id)
        field = "header.reminder_sms_template"
        fields = compile_sms(stored_sms, field).fields(field)
        compiled.update(fields)
        reminder_sms = Message("SMS", field, stored_sms.display_name, fields)
    if reminder_email is not None or reminder_sms is not None:
        violations.extend(
            batch_violations(
                checked.claim_mode, reminder_email or email_message, reminder_sms or sms_message
            )
        )
    # Checked again with the batch's mediums: a stored template may predate the rules, and
    # only the mediums say whether the SMS carries the wallet code.
    violations.extend(batch_violations(checked.claim_mode, email_message, sms_message))
    if checked.certificate_template_id is not None:
        if not schema.requires_certificate:
            violations.append(
                FieldViolation(
                    "header.certificate_template",
                    f"schema {schema.display_name} does not issue certificates; leave it empty",
                    "CERTIFICATE_NOT_ALLOWED",
                )
            )
        else:
            certificate = await catalog.get_certificate_template(
                conn, checked.certificate_template_id
            )
            certificate_id = certificate.id
            rendered = compile_certificate(certificate, "header.certificate_template")
            compiled["header.certificate_template.title"] = rendered.title
            compiled["header.certificate_template.body"] = rendered.body
    elif schema.requires_certificate:
        violations.append(
            FieldViolation(
                "header.certificate_template",
                f"schema {schema.display_name} requires a certificate: name a certificate template",
                "CERTIFICATE_TEMPLATE_REQUIRED",
            )
        )
    violations.extend(check_placeholders(compiled, schema))
    if violations:
        raise InvalidArgument(
            f"the upload header's templates do not fit the schema or mediums "
            f"({len(violations)} problems)",
            reason="INVALID_UPLOAD_HEADER",
            violations=violations,
        )
    return ResolvedUpload(checked, schema, email_id, sms_id, certificate_id)
