"""oauthd as seen by Authlib, a Python client: discovery metadata validated by Authlib's
RFC 8414 / OIDC Discovery / RFC 9207 models, authorization code + PKCE S256 through
``OAuth2Session``, ID token validation the way Authlib's own OpenID client does it (joserfc
signature check against the JWKS, then ``CodeIDToken`` for iss, aud, azp, nonce, at_hash),
and again with the older ``authlib.jose`` API, userinfo, refresh rotation with reuse
detection, revocation and introspection by a resource server.

Authlib's client does not check RFC 9207 ``iss`` on authorization responses, so
``check_iss`` below does what RFC 9207 §2.4 asks of a client. Run through interop/run.sh,
which starts the server and exports the INTEROP_* variables.
"""

from __future__ import annotations

import html.parser
import os
import urllib.parse
import warnings
from dataclasses import dataclass

import pytest
import requests
from authlib.common.security import generate_token
from authlib.integrations.requests_client import OAuth2Session
from authlib.integrations.requests_client import OAuthError
from authlib.oauth2 import rfc9207
from authlib.oauth2.rfc6749.errors import MismatchingStateException
from authlib.oidc.core import CodeIDToken
from authlib.oidc.core import UserInfo
from authlib.oidc.discovery import OpenIDProviderMetadata
from authlib.oidc.discovery import get_well_known_url
from joserfc import jwt as joserfc_jwt
from joserfc.errors import BadSignatureError
from joserfc.errors import InvalidClaimError
from joserfc.jwk import KeySet
from joserfc.jws import JWSRegistry


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        raise RuntimeError(f"{name} is not set: run the suites through interop/run.sh")
    return value


ISSUER = env("INTEROP_ISSUER")
REDIRECT_URI = env("INTEROP_REDIRECT_URI")
USERNAME = env("INTEROP_USERNAME")
PASSWORD = env("INTEROP_PASSWORD")
USER_SUB = env("INTEROP_USER_SUB")
USER_EMAIL = env("INTEROP_USER_EMAIL")
USER_NAME = env("INTEROP_USER_NAME")
API_CLIENT_ID = env("INTEROP_API_CLIENT_ID")
API_SECRET = env("INTEROP_API_SECRET")
CLIENT_ID = env("INTEROP_CLIENT_AUTHLIB")  # ID tokens RS256
CLIENT_ID_ES256 = env("INTEROP_CLIENT_AUTHLIB_ES256")  # ID tokens ES256
SCOPE = "openid profile email"
TIMEOUT = 15

# Authlib allows plain http only for loopback hosts (RFC 8252 §7.3); make sure that is all
# this suite ever talks to, and never set AUTHLIB_INSECURE_TRANSPORT.
assert urllib.parse.urlsplit(ISSUER).hostname in ("localhost", "127.0.0.1", "::1"), ISSUER
assert not os.environ.get("AUTHLIB_INSECURE_TRANSPORT")


# --- the server's published configuration -------------------------------------------------


@pytest.fixture(scope="module")
def metadata() -> OpenIDProviderMetadata:
    url = get_well_known_url(ISSUER, external=True)
    r = requests.get(url, timeout=TIMEOUT)
    r.raise_for_status()
    return OpenIDProviderMetadata(r.json())


@pytest.fixture(scope="module")
def jwks(metadata) -> dict:
    r = requests.get(metadata["jwks_uri"], timeout=TIMEOUT)
    r.raise_for_status()
    return r.json()


# --- a browser on oauthd's login and consent pages ------------------------------------------


class _Inputs(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.values: dict[str, str] = {}

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "input" and a.get("name") and a.get("value") is not None:
            self.values.setdefault(a["name"], a["value"])


def hidden_inputs(page: str) -> dict[str, str]:
    parser = _Inputs()
    parser.feed(page)
    return parser.values


def _expect(r: requests.Response, status: int, step: str) -> requests.Response:
    assert r.status_code == status, f"{step}: HTTP {r.status_code}: {r.text[:2000]}"
    return r


def sign_in_and_decide(authorization_url: str, decision: str = "approve") -> str:
    """Open the authorization URL, sign in, press Allow/Deny; the final redirect URL."""
    browser = requests.Session()  # keeps the server's cookies, per host
    r = _expect(
        browser.get(authorization_url, allow_redirects=False, timeout=TIMEOUT), 303, "authorize"
    )
    login = urllib.parse.urljoin(authorization_url, r.headers["location"])
    assert urllib.parse.urlsplit(login).path == "/login", login
    form = hidden_inputs(_expect(browser.get(login, timeout=TIMEOUT), 200, "GET /login").text)
    r = browser.post(
        urllib.parse.urljoin(login, "/login"),
        data={
            "csrf": form["csrf"],
            "pending": form["pending"],
            "username": USERNAME,
            "password": PASSWORD,
        },
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    consent = urllib.parse.urljoin(login, _expect(r, 303, "POST /login").headers["location"])
    assert urllib.parse.urlsplit(consent).path == "/consent", consent
    form = hidden_inputs(_expect(browser.get(consent, timeout=TIMEOUT), 200, "GET /consent").text)
    r = browser.post(
        urllib.parse.urljoin(consent, "/consent"),
        data={"csrf": form["csrf"], "pending": form["pending"], "decision": decision},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    return urllib.parse.urljoin(consent, _expect(r, 303, "POST /consent").headers["location"])


# --- the client --------------------------------------------------------------------------


def query(url: str) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(url).query))


def check_iss(redirect: str, metadata) -> None:
    """RFC 9207 §2.4, which Authlib's client leaves to the application."""
    iss = query(redirect).get("iss")
    if metadata.get("authorization_response_iss_parameter_supported"):
        assert iss is not None, f"RFC 9207: no iss in the authorization response {redirect}"
    if iss is not None:
        assert iss == metadata["issuer"], f"RFC 9207: iss {iss!r} is not {metadata['issuer']!r}"


def app(client_id: str = CLIENT_ID) -> OAuth2Session:
    """A public client (token_endpoint_auth_method none) doing PKCE S256."""
    return OAuth2Session(
        client_id,
        scope=SCOPE,
        redirect_uri=REDIRECT_URI,
        code_challenge_method="S256",
        default_timeout=TIMEOUT,
    )


def api() -> OAuth2Session:
    """The resource server; client_secret_post (openid-client covers client_secret_basic)."""
    return OAuth2Session(
        API_CLIENT_ID,
        API_SECRET,
        token_endpoint_auth_method="client_secret_post",
        default_timeout=TIMEOUT,
    )


@dataclass
class Authorization:
    url: str
    redirect: str
    state: str
    verifier: str
    nonce: str


def authorize(session: OAuth2Session, metadata, decision: str = "approve") -> Authorization:
    verifier = generate_token(64)
    nonce = generate_token(24)
    url, state = session.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    return Authorization(url, sign_in_and_decide(url, decision), state, verifier, nonce)


def exchange(session: OAuth2Session, metadata, a: Authorization) -> dict:
    check_iss(a.redirect, metadata)
    return session.fetch_token(
        metadata["token_endpoint"],
        authorization_response=a.redirect,
        state=a.state,  # Authlib compares it with the response's state
        code_verifier=a.verifier,
    )


def validate_id_token(token: dict, nonce: str, client_id: str, metadata, jwks) -> CodeIDToken:
    """As Authlib's OpenIDMixin.parse_id_token does, plus an explicit aud check."""
    decoded = joserfc_jwt.decode(
        token["id_token"],
        KeySet.import_key_set(jwks),
        registry=JWSRegistry(algorithms=metadata["id_token_signing_alg_values_supported"]),
    )
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        {
            "iss": {"essential": True, "value": metadata["issuer"]},
            "aud": {"essential": True, "value": client_id},
            "sub": {"essential": True},
            "nonce": {"essential": True},
            "at_hash": {"essential": True},
        },
        {"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    claims.validate(leeway=60)  # exp, iat, iss, aud, nonce, azp, at_hash
    return claims


def introspect(token: str) -> dict:
    metadata_url = get_well_known_url(ISSUER, external=True)
    endpoint = requests.get(metadata_url, timeout=TIMEOUT).json()["introspection_endpoint"]
    r = api().introspect_token(endpoint, token=token)
    assert r.status_code == 200, r.text
    return r.json()


def sign_in(metadata, client_id: str = CLIENT_ID):
    session = app(client_id)
    a = authorize(session, metadata)
    return session, a, exchange(session, metadata, a)


# --- the tests ---------------------------------------------------------------------------


def test_discovery_metadata_passes_authlib_validation(metadata):
    # RFC 8414 + OpenID Connect Discovery 1.0 + RFC 9207 models, every registered key.
    metadata.validate(metadata_classes=[rfc9207.AuthorizationServerMetadata])
    assert metadata["issuer"] == ISSUER
    assert metadata["authorization_response_iss_parameter_supported"] is True
    assert "S256" in metadata["code_challenge_methods_supported"]
    assert "none" in metadata["token_endpoint_auth_methods_supported"]
    for endpoint in ("authorization", "token", "revocation", "introspection", "userinfo"):
        assert metadata[f"{endpoint}_endpoint"].startswith(f"{ISSUER}/")


def test_code_flow_with_pkce_s256_and_id_token(metadata, jwks):
    session, a, token = sign_in(metadata)
    assert query(a.url)["code_challenge_method"] == "S256"
    assert query(a.redirect)["iss"] == ISSUER
    assert a.redirect.startswith(f"{REDIRECT_URI}?")

    assert token["token_type"].lower() == "bearer"
    assert token["access_token"] and token["refresh_token"]
    assert token["expires_in"] > 0 and token["expires_at"] > 0
    assert sorted(token["scope"].split()) == sorted(SCOPE.split())

    claims = validate_id_token(token, a.nonce, CLIENT_ID, metadata, jwks)
    assert claims.header["alg"] == "RS256"
    assert claims["sub"] == USER_SUB
    assert claims["azp"] == CLIENT_ID
    assert claims["nonce"] == a.nonce
    assert isinstance(claims["auth_time"], int)

    # The checks are live: another nonce, another audience or a corrupted signature fail.
    with pytest.raises(InvalidClaimError):
        validate_id_token(token, generate_token(24), CLIENT_ID, metadata, jwks)
    with pytest.raises(InvalidClaimError):
        validate_id_token(token, a.nonce, "someone-else", metadata, jwks)
    header, payload, signature = token["id_token"].split(".")
    flipped = ("A" if signature[0] != "A" else "B") + signature[1:]
    with pytest.raises(BadSignatureError):
        validate_id_token(
            {**token, "id_token": f"{header}.{payload}.{flipped}"}, a.nonce, CLIENT_ID, metadata, jwks
        )


def test_es256_id_token(metadata, jwks):
    _, a, token = sign_in(metadata, CLIENT_ID_ES256)
    claims = validate_id_token(token, a.nonce, CLIENT_ID_ES256, metadata, jwks)
    assert claims.header["alg"] == "ES256"
    assert claims["aud"] == CLIENT_ID_ES256


def test_id_token_with_the_authlib_jose_api(metadata, jwks):
    """The older authlib.jose API (deprecated in Authlib 1.7+ for joserfc, still shipped)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from authlib.jose import JsonWebKey
        from authlib.jose import jwt
        from authlib.jose.errors import InvalidClaimError as JoseInvalidClaimError

    _, a, token = sign_in(metadata)

    def decode(nonce: str, aud: str):
        claims = jwt.decode(
            token["id_token"],
            JsonWebKey.import_key_set(jwks),
            claims_options={
                "iss": {"essential": True, "value": ISSUER},
                "aud": {"essential": True, "value": aud},
                "nonce": {"essential": True, "value": nonce},
                "sub": {"essential": True},
                "exp": {"essential": True},
                "iat": {"essential": True},
            },
        )
        claims.validate(leeway=60)
        return claims

    claims = decode(a.nonce, CLIENT_ID)
    assert claims.header["alg"] == "RS256"
    assert claims["sub"] == USER_SUB
    with pytest.raises(JoseInvalidClaimError):
        decode("another-nonce", CLIENT_ID)
    with pytest.raises(JoseInvalidClaimError):
        decode(a.nonce, "someone-else")


def test_userinfo(metadata, jwks):
    session, a, token = sign_in(metadata)
    claims = validate_id_token(token, a.nonce, CLIENT_ID, metadata, jwks)
    r = session.get(metadata["userinfo_endpoint"])  # Bearer, from the session's token
    assert r.status_code == 200, r.text
    info = UserInfo(r.json())
    assert info["sub"] == claims["sub"] == USER_SUB  # OIDC Core §5.3.2
    assert info["email"] == USER_EMAIL
    assert info["email_verified"] is False
    assert info["name"] == USER_NAME
    assert info["preferred_username"] == USERNAME


def test_refresh_rotates_and_reuse_revokes_the_grant(metadata):
    session, _, first = sign_in(metadata)
    endpoint = metadata["token_endpoint"]
    rt1 = first["refresh_token"]

    second = dict(session.refresh_token(endpoint, refresh_token=rt1))
    assert second["refresh_token"] != rt1, "rotated"
    assert second["access_token"] != first["access_token"]
    assert "id_token" not in second
    third = dict(session.refresh_token(endpoint, refresh_token=second["refresh_token"]))
    assert third["refresh_token"] != second["refresh_token"]

    # rt1 was rotated out and its successor used: a replay is a reuse (RFC 9700 §4.14.2).
    with pytest.raises(OAuthError) as reuse:
        session.refresh_token(endpoint, refresh_token=rt1)
    assert reuse.value.error == "invalid_grant"
    # The whole grant went with it.
    with pytest.raises(OAuthError) as after:
        session.refresh_token(endpoint, refresh_token=third["refresh_token"])
    assert after.value.error == "invalid_grant"
    assert introspect(third["access_token"]) == {"active": False}


def test_introspection_then_revocation(metadata):
    session, _, token = sign_in(metadata)
    info = introspect(token["access_token"])
    assert info["active"] is True
    assert info["client_id"] == CLIENT_ID
    assert info["sub"] == USER_SUB
    assert info["username"] == USERNAME
    assert info["iss"] == ISSUER
    assert info["token_type"] == "Bearer"
    assert sorted(info["scope"].split()) == sorted(SCOPE.split())
    assert info["exp"] > info["iat"]
    assert introspect(token["refresh_token"])["active"] is True

    # A public client revokes with its client_id in the body (auth method none).
    r = session.revoke_token(
        metadata["revocation_endpoint"], token=token["refresh_token"], token_type_hint="refresh_token"
    )
    assert r.status_code == 200, r.text
    assert introspect(token["refresh_token"]) == {"active": False}
    assert introspect(token["access_token"]) == {"active": False}
    with pytest.raises(OAuthError) as refused:
        session.refresh_token(metadata["token_endpoint"], refresh_token=token["refresh_token"])
    assert refused.value.error == "invalid_grant"
    # RFC 7009 §2.2: revoking an invalid token is still a 200.
    r = session.revoke_token(metadata["revocation_endpoint"], token="not-a-token")
    assert r.status_code == 200, r.text


def test_introspection_needs_the_resource_server_credentials(metadata):
    _, _, token = sign_in(metadata)
    wrong = OAuth2Session(
        API_CLIENT_ID, "wrong-secret", token_endpoint_auth_method="client_secret_post"
    )
    r = wrong.introspect_token(metadata["introspection_endpoint"], token=token["access_token"])
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "invalid_client"


def test_state_is_echoed_and_checked(metadata):
    session = app()
    a = authorize(session, metadata)
    assert query(a.redirect)["state"] == a.state
    tampered = a.redirect.replace(f"state={a.state}", "state=forged")
    with pytest.raises(MismatchingStateException):
        session.fetch_token(
            metadata["token_endpoint"],
            authorization_response=tampered,
            state=a.state,
            code_verifier=a.verifier,
        )


def test_denied_consent_is_an_error_response_with_iss(metadata):
    """RFC 9207 §2: iss on every authorization response, errors included."""
    session = app()
    a = authorize(session, metadata, decision="deny")
    params = query(a.redirect)
    assert params["error"] == "access_denied"
    assert params["state"] == a.state
    assert "code" not in params
    check_iss(a.redirect, metadata)
