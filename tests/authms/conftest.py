import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@pytest.fixture
def external_key(settings):
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    settings.EXTERNAL_JWT_VERIFYING_KEY = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    settings.EXTERNAL_JWT_ALGORITHM = "RS256"
    return private_key
