"""The demo's EHR: a CDS Client with its own EC P-384 key that signs CDS Hooks JWTs (ES384).

The service verifies these exactly as it verifies a hospital EHR's: the demo configures the client's
JWK Set out-of-band (``MSKCDS_CDS_CLIENTS=[{"iss": ..., "jwks": ...}]``), so security stays on.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

DEMO_ISSUER = "https://ehr.demo.mskcds.invalid"


class DemoEhr:
    """Signs one short-lived JWT per hook call, as CDS Hooks 2.0 requires (``iss``, ``aud``, ``exp``, ``jti``)."""

    def __init__(self, iss: str = DEMO_ISSUER, kid: str = "demo-es384") -> None:
        self.iss = iss
        self.kid = kid
        self._key = ec.generate_private_key(ec.SECP384R1())

    def client_setting(self) -> dict[str, Any]:
        """This EHR as an entry of ``MSKCDS_CDS_CLIENTS`` (public key configured out-of-band)."""
        jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self._key.public_key()))
        jwk.update(kid=self.kid, alg="ES384", use="sig")
        return {"iss": self.iss, "jwks": {"keys": [jwk]}}

    def token(self, audience: str) -> str:
        """A JWT for one call to the CDS service URL ``audience``, valid for five minutes."""
        now = int(time.time())
        claims = {"iss": self.iss, "aud": audience, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
        return jwt.encode(claims, self._key, algorithm="ES384", headers={"kid": self.kid, "typ": "JWT"})
