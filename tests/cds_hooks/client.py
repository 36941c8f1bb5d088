"""A test CDS Client: an EC P-384 / RSA key pair, JWTs signed the way EHRs sign them, and its JWK Set
served by a real HTTP server on a free loopback port (shared by the protocol and the API tests)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class CdsTestClient:
    """Signs CDS Hooks JWTs as issuer ``iss`` with its own keys (``ES384`` by default)."""

    def __init__(self, iss: str = "https://ehr.test/", kid: str = "test-es384") -> None:
        self.iss = iss
        self.kid = kid
        self.ec_key = ec.generate_private_key(ec.SECP384R1())
        self.rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jku: str | None = None

    def jwks(self, *, rsa_alg: bool = False) -> dict[str, Any]:
        """The public JWK Set: the EC key (with ``alg``) and the RSA key (``kid`` + "-rsa", no ``alg``)."""
        ec_jwk = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(self.ec_key.public_key()))
        rsa_jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.rsa_key.public_key()))
        ec_jwk.update(kid=self.kid, alg="ES384", use="sig")
        rsa_jwk.update(kid=f"{self.kid}-rsa", use="sig")
        if rsa_alg:
            rsa_jwk["alg"] = "RS384"
        return {"keys": [ec_jwk, rsa_jwk]}

    def claims(self, aud: str | list[str], **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {"iss": self.iss, "aud": aud, "iat": now, "exp": now + 300, "jti": str(uuid.uuid4())}
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def token(self, aud: str | list[str], *, alg: str = "ES384", headers: dict[str, Any] | None = None,
              **claim_overrides: Any) -> str:
        """A signed JWT for a call to ``aud``; ``jku`` is set when the client has one."""
        key = self.ec_key if alg.startswith("ES") else self.rsa_key
        kid = self.kid if alg.startswith("ES") else f"{self.kid}-rsa"
        header: dict[str, Any] = {"kid": kid, "typ": "JWT"}
        if self.jku:
            header["jku"] = self.jku
        header.update(headers or {})
        header = {k: v for k, v in header.items() if v is not None}
        return jwt.encode(self.claims(aud, **claim_overrides), key, algorithm=alg, headers=header)

    def unsigned_token(self, aud: str) -> str:
        """``alg: none``: no signature at all."""
        header = {"alg": "none", "typ": "JWT", "kid": self.kid}
        return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(self.claims(aud)).encode())}."

    def hs256_with_public_key(self, aud: str) -> str:
        """The algorithm-confusion attack: HMAC-SHA256 keyed with the (public) EC key's PEM."""
        secret = self.ec_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        header = {"alg": "HS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(self.claims(aud)).encode())}"
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(signature)}"


def tampered(token: str, **changes: Any) -> str:
    """The token with its payload changed and the original signature kept."""
    header, payload, signature = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    claims.update(changes)
    return f"{header}.{b64url(json.dumps(claims).encode())}.{signature}"


class JwksServer:
    """Serves a JWK Set at ``/jwks.json`` on 127.0.0.1; counts the fetches; can be made to fail."""

    def __init__(self, jwks: dict[str, Any]) -> None:
        self.jwks = jwks
        self.fetches = 0
        self.status = 200
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.fetches += 1
                body = json.dumps(outer.jwks).encode() if self.path == "/jwks.json" else b"{}"
                status = outer.status if self.path == "/jwks.json" else 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/jwks.json"

    @contextmanager
    def running(self) -> Iterator[JwksServer]:
        thread = threading.Thread(target=self._server.serve_forever, args=(0.02,), daemon=True)
        thread.start()
        try:
            yield self
        finally:
            self._server.shutdown()
            self._server.server_close()
            thread.join()
