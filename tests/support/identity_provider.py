"""A fake identity provider for tests: RSA signing keys, its JWKS document, and user tokens.

The JWKS endpoint itself is faked with respx (the gateway fetches it with httpx); tokens are real
JWTs signed with real keys, so the gateway's verification runs exactly as in production.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from tests.support.gateway import make_settings
from voice_gateway.settings import Settings
from voice_gateway.standin import StandIn

ISSUER = "https://idp.example.test/"
AUDIENCE = "voice-gateway-tests"
JWKS_URL = "https://idp.example.test/.well-known/jwks.json"
USER_SECRET = "end-user-shared-secret-for-tests-0123456789"


@dataclass(frozen=True)
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey

    def jwk(self) -> dict[str, Any]:
        public: dict[str, Any] = json.loads(RSAAlgorithm.to_jwk(self.private.public_key()))
        return public | {"kid": self.kid, "use": "sig", "alg": "RS256"}


@cache
def signing_key(kid: str) -> SigningKey:
    return SigningKey(kid, rsa.generate_private_key(public_exponent=65537, key_size=2048))


def jwks(*keys: SigningKey) -> dict[str, Any]:
    return {"keys": [key.jwk() for key in keys]}


def claims_for(sub: str, **overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {"sub": sub, "iss": ISSUER, "aud": AUDIENCE, "iat": now}
    # An hour: several modules mint their tokens at import, and the whole suite runs past the
    # five minutes these used to last (its later modules' tokens had expired when they ran).
    return claims | {"exp": now + 3600} | overrides


def rs256_token(sub: str, key: SigningKey, **claims: Any) -> str:
    return jwt.encode(claims_for(sub, **claims), key.private, "RS256", headers={"kid": key.kid})


def hs256_token(sub: str, secret: str = USER_SECRET, **claims: Any) -> str:
    return jwt.encode(claims_for(sub, **claims), secret, "HS256")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def jwks_settings(standin: StandIn, **overrides: Any) -> Settings:
    values = {"jwt_jwks_url": JWKS_URL, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    return make_settings(standin, **(values | overrides))


def secret_settings(standin: StandIn, **overrides: Any) -> Settings:
    values = {"jwt_secret": USER_SECRET, "jwt_issuer": ISSUER, "jwt_audience": AUDIENCE}
    return make_settings(standin, **(values | overrides))
