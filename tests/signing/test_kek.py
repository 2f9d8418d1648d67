import os
import uuid

import pytest

from credbatch.signing.kek import KeyUnwrapError, unwrap, wrap


def test_wrap_round_trips_and_binds_tenant_and_kid() -> None:
    kek = os.urandom(32)
    tenant = uuid.uuid4()
    nonce, ciphertext = wrap(kek, tenant, "kid-1", b"secret key bytes")
    assert unwrap(kek, tenant, "kid-1", nonce, ciphertext) == b"secret key bytes"
    with pytest.raises(KeyUnwrapError):
        unwrap(kek, uuid.uuid4(), "kid-1", nonce, ciphertext)
    with pytest.raises(KeyUnwrapError):
        unwrap(kek, tenant, "kid-2", nonce, ciphertext)
    with pytest.raises(KeyUnwrapError):
        unwrap(os.urandom(32), tenant, "kid-1", nonce, ciphertext)
