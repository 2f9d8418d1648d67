"""Invitations reach a relay only over TLS, with its credentials, when so configured.

A real aiosmtpd relay that requires STARTTLS (or speaks TLS from the first byte) and AUTH,
with a certificate made for this test, and the worker's SmtpPool as the client.
"""

from __future__ import annotations

import datetime
import ipaddress
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import uvloop
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.fixtures.processes import free_port
from workers.issuance.delivery.email import Envelope as Mail
from workers.issuance.delivery.email import SmtpPool
from workers.issuance.outcomes import IssuanceFailure

USER, PASSWORD = "relay-user", "relay-password"


def _certificate(directory: Path, name: str) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / f"{name}.pem", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


class _Relay:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes, bool]] = []

    async def handle_DATA(self, server: Any, session: Session, envelope: Envelope) -> str:
        assert envelope.mail_from is not None and isinstance(envelope.content, bytes)
        # STARTTLS sets session.ssl; implicit TLS shows on the transport.
        tls = session.ssl is not None or server.transport.get_extra_info("ssl_object") is not None
        self.messages.append((envelope.mail_from, envelope.rcpt_tos, envelope.content, tls))
        return "250 OK"


def _authenticate(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> Any:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (
        USER.encode(),
        PASSWORD.encode(),
    )
    return AuthResult(success=ok, handled=False)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    directory = tmp_path_factory.mktemp("smtp-tls")
    cert, key = _certificate(directory, "relay")
    other, _ = _certificate(directory, "stranger")
    return {"cert": cert, "key": key, "other_ca": other}


def _server_context(certificates: dict[str, Path]) -> ssl.SSLContext:
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates["cert"], certificates["key"])
    return context


def _run_relay(**options: Any) -> Iterator[tuple[Controller, _Relay]]:
    """A relay requiring authentication, with ``options`` saying how it speaks TLS."""
    relay = _Relay()
    # aiosmtpd's Controller connects to its own port to start, so port 0 cannot be used.
    controller = Controller(
        relay,
        hostname="127.0.0.1",
        port=free_port(),
        auth_required=True,
        authenticator=_authenticate,
        **options,
    )
    controller.start()
    yield controller, relay
    controller.stop()


@pytest.fixture
def starttls_relay(certificates: dict[str, Path]) -> Iterator[tuple[Controller, _Relay]]:
    yield from _run_relay(
        tls_context=_server_context(certificates),
        require_starttls=True,
        auth_exclude_mechanism=["LOGIN"],
    )


@pytest.fixture
def implicit_relay(certificates: dict[str, Path]) -> Iterator[tuple[Controller, _Relay]]:
    yield from _run_relay(
        ssl_context=_server_context(certificates),
        # aiosmtpd only counts STARTTLS as TLS; this connection is TLS from the first byte.
        auth_require_tls=False,
    )


def _port(controller: Controller) -> int:
    port: int = controller.port
    return port


MAIL = Mail("issuer@example.com", "holder@example.com", b"Subject: hi\r\n\r\nhello\r\n")


async def _send(port: int, **security: Any) -> None:
    pool = SmtpPool("127.0.0.1", port, 1, timeout=5.0, **security)
    try:
        await pool.send(MAIL)
        await pool.send(MAIL)  # the pooled connection is reused, still encrypted
    finally:
        await pool.close()


async def test_starttls_with_login_and_a_private_ca_delivers(
    starttls_relay: tuple[Controller, _Relay], certificates: dict[str, Path]
) -> None:
    controller, relay = starttls_relay
    await _send(
        _port(controller),
        tls="starttls",
        username=USER,
        password=PASSWORD,
        ca_file=str(certificates["cert"]),
    )
    assert [(m[0], m[1], m[3]) for m in relay.messages] == [
        ("issuer@example.com", ["holder@example.com"], True)
    ] * 2
    assert b"hello" in relay.messages[0][2]


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
async def test_implicit_tls_with_login_delivers(
    implicit_relay: tuple[Controller, _Relay], certificates: dict[str, Path]
) -> None:
    controller, relay = implicit_relay
    await _send(
        _port(controller),
        tls="implicit",
        username=USER,
        password=PASSWORD,
        ca_file=str(certificates["cert"]),
    )
    assert len(relay.messages) == 2 and all(m[3] for m in relay.messages)


async def _refused(port: int, **security: Any) -> IssuanceFailure:
    with pytest.raises(IssuanceFailure) as caught:
        await _send(port, **security)
    return caught.value


async def test_a_wrong_password_is_a_clear_error_and_nothing_is_sent(
    starttls_relay: tuple[Controller, _Relay], certificates: dict[str, Path]
) -> None:
    controller, relay = starttls_relay
    failure = await _refused(
        _port(controller),
        tls="starttls",
        username=USER,
        password="wrong",
        ca_file=str(certificates["cert"]),
    )
    assert failure.code == "SMTP_AUTH_FAILED" and failure.transient, failure.message
    assert "535" in failure.message
    assert relay.messages == []


async def test_without_tls_the_relay_refuses_login_and_mail(
    starttls_relay: tuple[Controller, _Relay],
) -> None:
    controller, relay = starttls_relay
    failure = await _refused(_port(controller), username=USER, password=PASSWORD)
    assert failure.code == "SMTP_SETUP_FAILED", failure.message
    assert "AUTH" in failure.message
    failure = await _refused(_port(controller))
    assert failure.code == "SMTP_REJECTED" and "STARTTLS" in failure.message
    assert relay.messages == []


async def test_a_certificate_from_another_ca_is_refused(
    starttls_relay: tuple[Controller, _Relay], certificates: dict[str, Path]
) -> None:
    controller, relay = starttls_relay
    failure = await _refused(
        _port(controller),
        tls="starttls",
        username=USER,
        password=PASSWORD,
        ca_file=str(certificates["other_ca"]),
    )
    assert failure.code == "SMTP_TLS_FAILED", failure.message
    assert "CERTIFICATE_VERIFY_FAILED" in failure.message
    assert relay.messages == []


async def test_starttls_against_a_relay_without_it_is_refused_not_downgraded() -> None:
    relay = _Relay()
    controller = Controller(relay, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        failure = await _refused(_port(controller), tls="starttls")
    finally:
        controller.stop()
    assert failure.code == "SMTP_SETUP_FAILED", failure.message
    assert "STARTTLS" in failure.message
    assert relay.messages == []


@pytest.mark.filterwarnings("ignore:Requiring AUTH while not requiring TLS:UserWarning")
@pytest.mark.parametrize("mode", ["starttls", "implicit"])
def test_tls_delivers_on_uvloop_as_the_worker_runs(
    mode: str, certificates: dict[str, Path], request: pytest.FixtureRequest
) -> None:
    # The worker's loop is uvloop, whose TLS transport the SMTP session takes over after
    # aiosmtplib's set-up, as on asyncio's (the tests above).
    controller, relay = request.getfixturevalue(f"{mode}_relay")
    uvloop.run(
        _send(
            _port(controller),
            tls=mode,
            username=USER,
            password=PASSWORD,
            ca_file=str(certificates["cert"]),
        )
    )
    assert len(relay.messages) == 2 and all(m[3] for m in relay.messages)
