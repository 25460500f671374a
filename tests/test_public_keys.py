"""Tokens signed by the marketplace (`chatd.auth` with public keys): RS256, ES256 and EdDSA
verified by a PEM file or a JWKS document; every way of making the server check a token
with the wrong key refused."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from chatd.auth import (
    PublicKeyError,
    TokenError,
    load_public_keys,
    parse_public_keys,
    verify,
)
from tests.marketplace_keys import (
    ALGORITHMS,
    Signer,
    hs256_keyed_with,
    jwks,
    private_pem,
    public_pem,
    unsigned_token,
)

SECRET = "unit-secret-" + "z" * 24


@pytest.fixture(scope="module")
def signers() -> dict[str, Signer]:
    return {algorithm: Signer.new(algorithm) for algorithm in ALGORITHMS}


@pytest.mark.parametrize("algorithm", ALGORITHMS)
@pytest.mark.parametrize("form", ["pem", "jwks"])
def test_a_marketplace_token_is_accepted_with_the_claims_of_a_secret_signed_one(
    signers: dict[str, Signer], algorithm: str, form: str
) -> None:
    every = list(signers.values())
    text = "\n".join(s.pem() for s in every) if form == "pem" else jwks(*every)
    keys = parse_public_keys(text)
    assert sorted(k.algorithm for k in keys) == sorted(ALGORITHMS)
    token = signers[algorithm].token(
        role="seller", sub="op-1", name="Анна", seller="shop-1", shop_name="Север"
    )
    actor = verify(SECRET, token, public_keys=keys).actor
    assert (actor.role, actor.id, actor.name, actor.shop, actor.shop_name) == (
        "seller",
        "op-1",
        "Анна",
        "shop-1",
        "Север",
    )
    assert actor.scopes is None  # a token, not a key: its role decides alone


def test_a_certificate_gives_its_public_key(tmp_path: Path) -> None:
    signer = Signer.new("ES256")
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "marketplace")])
    key = signer.key
    assert isinstance(key, ec.EllipticCurvePrivateKey)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime(2024, 1, 1))
        .not_valid_after(datetime(2124, 1, 1))
        .sign(key, hashes.SHA256())
    )
    path = tmp_path / "marketplace.pem"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    assert verify(SECRET, signer.token(), public_keys=load_public_keys(path)).actor.role == "buyer"


def test_hs256_with_the_secret_still_works_beside_the_public_keys(
    signers: dict[str, Signer],
) -> None:
    keys = parse_public_keys(jwks(*signers.values()))
    token = jwt.encode({"sub": "b1", "role": "buyer", "exp": 2**31 - 1}, SECRET, "HS256")
    assert verify(SECRET, token, now=2**31 - 3600, public_keys=keys).actor.id == "b1"


# ---- what must be refused ---------------------------------------------------------------------


@pytest.mark.parametrize("form", ["pem", "jwks"])
def test_hs256_keyed_with_the_public_key_is_refused(signers: dict[str, Signer], form: str) -> None:
    """Algorithm confusion: the public key is public, so an HMAC keyed with it is forgeable
    by anyone; a server that let the token's `alg` pick how the public key is used would
    take it. HS256 is only ever checked against the secret."""
    signer = signers["RS256"]
    text = signer.pem() if form == "pem" else jwks(signer)
    keys = parse_public_keys(text)
    for material in (signer.pem().encode(), text.encode()):
        forged = hs256_keyed_with(material, role="manager", sub="intruder")
        with pytest.raises(TokenError, match="not valid"):
            verify(SECRET, forged, public_keys=keys)


def test_alg_none_is_refused(signers: dict[str, Signer]) -> None:
    keys = parse_public_keys(jwks(*signers.values()))
    for alg_none in (unsigned_token(role="manager"), unsigned_token(role="system")):
        with pytest.raises(TokenError, match="'none' are not accepted"):
            verify(SECRET, alg_none, public_keys=keys)
        with pytest.raises(TokenError):
            verify(SECRET, alg_none)


def test_a_token_of_another_key_of_the_same_kind_is_refused(signers: dict[str, Signer]) -> None:
    keys = parse_public_keys(jwks(*signers.values()))
    for algorithm in ALGORITHMS:
        stranger = Signer.new(algorithm)
        with pytest.raises(TokenError, match="Signature verification failed"):
            verify(SECRET, stranger.token(), public_keys=keys)


def test_an_algorithm_without_a_key_of_its_kind_is_refused(signers: dict[str, Signer]) -> None:
    only_ec = parse_public_keys(signers["ES256"].pem())
    with pytest.raises(TokenError, match="no key of this server verifies RS256"):
        verify(SECRET, signers["RS256"].token(), public_keys=only_ec)
    # And none at all without --jwt-public-key.
    with pytest.raises(TokenError, match="no key of this server verifies ES256"):
        verify(SECRET, signers["ES256"].token())


def test_other_algorithms_are_refused(signers: dict[str, Signer]) -> None:
    rsa_key = signers["RS256"].key
    keys = parse_public_keys(jwks(*signers.values()))
    for algorithm in ("RS512", "PS256", "HS512"):
        key = SECRET * 2 if algorithm.startswith("HS") else rsa_key
        token = jwt.encode({"sub": "b", "role": "buyer", "exp": 2**31 - 1}, key, algorithm)  # type: ignore[arg-type]
        with pytest.raises(TokenError, match="are not accepted"):
            verify(SECRET, token, public_keys=keys)


def test_kid_picks_the_key_and_keys_without_kid_are_all_tried() -> None:
    old, new = Signer.new("ES256", kid="2025"), Signer.new("ES256", kid="2026")
    keys = parse_public_keys(jwks(old, new))
    assert verify(SECRET, new.token(), public_keys=keys).actor.role == "buyer"
    assert verify(SECRET, old.token(), public_keys=keys).actor.role == "buyer"
    # The right key named by the wrong kid: the key it names does not verify it.
    lying = Signer("ES256", new.key, kid="2025")
    with pytest.raises(TokenError, match="Signature verification failed"):
        verify(SECRET, lying.token(), public_keys=keys)
    unknown = Signer("ES256", new.key, kid="1999")
    with pytest.raises(TokenError, match="no key of this server"):
        verify(SECRET, unknown.token(), public_keys=keys)
    # A PEM file names no kid: while the marketplace rotates, each of its keys is tried.
    pem_keys = parse_public_keys(old.pem() + new.pem())
    assert verify(SECRET, new.token(), public_keys=pem_keys).actor.role == "buyer"


def test_a_marketplace_token_keeps_the_rules_of_claims(signers: dict[str, Signer]) -> None:
    keys = parse_public_keys(jwks(*signers.values()))
    signer = signers["EdDSA"]
    with pytest.raises(TokenError, match="expired"):
        verify(SECRET, signer.token(exp=1), public_keys=keys)
    with pytest.raises(TokenError, match="exp"):
        verify(SECRET, signer.token(exp=None), public_keys=keys)
    with pytest.raises(TokenError, match="role or sub"):
        verify(SECRET, signer.token(role="admin"), public_keys=keys)
    with pytest.raises(TokenError, match="30 days"):
        verify(SECRET, signer.token(exp=2**40), public_keys=keys)


# ---- files chatd refuses to start with --------------------------------------------------------


def test_what_is_no_set_of_public_keys_is_refused(signers: dict[str, Signer]) -> None:
    ec_key = signers["ES256"].key
    cases = {
        "": "no public key",
        "hello": "no public key",
        "{": "not a JWKS",
        '{"keys": 3}': "not a JWKS",
        '{"keys": [3]}': "not an object",
        private_pem(ec_key): "public keys only",
        json.dumps({"keys": [{**signers["ES256"].jwk(), "d": "AAAA"}]}): "public keys only",
        json.dumps({"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}): "public keys only",
        json.dumps({"keys": [{**signers["ES256"].jwk(), "alg": "RS256"}]}): "chatd takes ES256",
        public_pem(rsa.generate_private_key(public_exponent=65537, key_size=1024)): "1024 bits",
        public_pem(ec.generate_private_key(ec.SECP384R1())): "needs P-256",
        "-----BEGIN PUBLIC KEY-----\nbm90IGEga2V5\n-----END PUBLIC KEY-----": "cannot be read",
    }
    for text, why in cases.items():
        with pytest.raises(PublicKeyError, match=why):
            parse_public_keys(text)


def test_encryption_keys_of_a_jwks_are_left_out(signers: dict[str, Signer]) -> None:
    document = json.loads(jwks(signers["RS256"], signers["ES256"]))
    document["keys"][0]["use"] = "enc"
    keys = parse_public_keys(json.dumps(document))
    assert [k.algorithm for k in keys] == ["ES256"]


def test_a_missing_file_is_a_public_key_error(tmp_path: Path) -> None:
    with pytest.raises(PublicKeyError, match="cannot read"):
        load_public_keys(tmp_path / "absent.pem")
