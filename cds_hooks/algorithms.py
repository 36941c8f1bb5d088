"""JWS algorithms for CDS client JWTs (CDS Hooks 2.0, "JWT Signing Algorithm"); a leaf module, cheap to import."""

#: Asymmetric JWS algorithms (RFC 7518 / RFC 8037) a deployment may allow. ``none`` and the symmetric
#: (HMAC) algorithms are not in it: the spec forbids both.
ASYMMETRIC_ALGORITHMS: frozenset[str] = frozenset(
    {"ES256", "ES384", "ES512", "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "EdDSA"}
)
#: What the spec recommends.
RECOMMENDED_ALGORITHMS: tuple[str, ...] = ("ES384", "RS384")
