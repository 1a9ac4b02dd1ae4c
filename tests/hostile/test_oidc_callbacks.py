"""Hostile OpenID Connect sign-in inputs: each is refused and grants no session and no role.

Driven without a browser (httpx makes the browser's requests, see
airflow_platform.local.oidc_login) against the session's local platform: Airflow's FAB
auth manager and the local OpenID Connect provider, nothing stubbed. "Refused" means: the
callback sends the browser back to Airflow's login page with FAB's message, no API token
cookie is set, the REST API answers 401 with that browser's cookies, and the user's
sign-in count at FAB did not move.
"""

from __future__ import annotations

import base64
import hashlib
import re
import secrets
from urllib.parse import parse_qs, urlencode, urljoin, urlsplit

import httpx
import pytest

from airflow_platform.local import oidc
from airflow_platform.local.oidc_login import OidcSignIn, SignInRefused
from airflow_platform.local.platform import LocalPlatform

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

DENIED = "The request to sign in was denied."


@pytest.fixture(scope="module")
def api_url(platform: LocalPlatform) -> str:
    return platform.api_url()


@pytest.fixture(scope="module")
def users(platform: LocalPlatform) -> dict[str, str]:
    return {u.name: u.password for u in platform.sign_in_users()}


@pytest.fixture(scope="module")
def admin(platform: LocalPlatform):
    return platform.api("admin")


def login_count(admin, name: str) -> int | None:
    status, body = _get(admin, f"/auth/fab/v1/users/{name}")
    return body["login_count"] if status == 200 else None


def _get(admin, path: str) -> tuple[int, dict]:
    answer = httpx.get(
        f"{admin.base_url}{path}", headers={"Authorization": f"Bearer {admin.token()}"}
    )
    return answer.status_code, answer.json() if answer.content else {}


def with_param(url: str, **changes: str | None) -> str:
    parts = urlsplit(url)
    params = {k: v[0] for k, v in parse_qs(parts.query).items()}
    for key, value in changes.items():
        if value is None:
            params.pop(key, None)
        else:
            params[key] = value
    return parts._replace(query=urlencode(params)).geturl()


def flipped(value: str) -> str:
    return value[:-4] + ("AAAA" if value[-4:] != "AAAA" else "BBBB")


def assert_refused(flow: OidcSignIn, answer: httpx.Response, message: str = DENIED) -> None:
    """Back to the login page with `message`, no token, and the API refuses this browser."""
    assert answer.is_redirect, (answer.status_code, answer.text[:500])
    location = urljoin(str(answer.url), answer.headers["location"])
    assert "/auth/login" in location, location
    assert flow.token() is None
    page = flow.client.get(location)
    assert message in page.text
    dags = flow.client.get(f"{flow.api_url}/api/v2/dags?limit=1")
    assert dags.status_code == 401, dags.text


def signed_in_callback(api_url: str, user: str, password: str) -> tuple[OidcSignIn, str]:
    flow = OidcSignIn(api_url)
    flow.start()
    return flow, flow.submit(user, password)


def test_an_untampered_callback_signs_in(api_url, users, admin) -> None:
    """The control: the same steps with nothing changed do sign the user in."""
    before = login_count(admin, "viewer") or 0
    flow, callback = signed_in_callback(api_url, "viewer", users["viewer"])
    with flow:
        answer = flow.callback(callback)
        assert answer.is_redirect and "/auth/login" not in answer.headers["location"]
        assert flow.token()
        assert flow.client.get(f"{api_url}/api/v2/dags?limit=1").status_code == 200
    assert login_count(admin, "viewer") == before + 1


@pytest.mark.parametrize(
    ("case", "change"),
    [
        ("tampered state", lambda url: with_param(url, state=flipped(_q(url, "state")))),
        ("tampered code", lambda url: with_param(url, code=flipped(_q(url, "code")))),
        ("missing state", lambda url: with_param(url, state=None)),
        ("missing code", lambda url: with_param(url, code=None)),
        ("provider error", lambda url: with_param(url, code=None, error="access_denied")),
    ],
)
def test_a_changed_callback_is_refused(api_url, users, admin, case, change) -> None:
    before = login_count(admin, "viewer")
    flow, callback = signed_in_callback(api_url, "viewer", users["viewer"])
    with flow:
        assert_refused(flow, flow.callback(change(callback)))
    assert login_count(admin, "viewer") == before, case


def _q(url: str, key: str) -> str:
    return parse_qs(urlsplit(url).query)[key][0]


def test_a_replayed_callback_is_refused(api_url, users, admin) -> None:
    flow, callback = signed_in_callback(api_url, "op", users["op"])
    with flow:
        assert flow.callback(callback).is_redirect and flow.token()
    count = login_count(admin, "op")
    # The same callback in another browser (an intercepted URL): its state is not theirs.
    with OidcSignIn(api_url) as thief:
        assert_refused(thief, thief.callback(callback))
    # The used code with a fresh, valid state of the thief's own sign-in: the provider
    # refuses a code twice (and one bound to another PKCE verifier).
    with OidcSignIn(api_url) as thief:
        thief.start()
        fresh = thief.submit("viewer", users["viewer"])
        assert_refused(thief, thief.callback(with_param(fresh, code=_q(callback, "code"))))
    assert login_count(admin, "op") == count


def test_a_forged_callback_without_a_sign_in_is_refused(api_url, admin) -> None:
    before = login_count(admin, "admin")
    with OidcSignIn(api_url) as flow:
        forged = f"{api_url}/auth/oauth-authorized/oidc?code=forged&state=forged"
        assert_refused(flow, flow.callback(forged))
    assert login_count(admin, "admin") == before


@pytest.mark.parametrize(
    ("user", "password"),
    [("viewer", "not-the-password"), ("viewer", ""), ("nobody", "whatever"), ("admin ", "x")],
)
def test_wrong_credentials_are_refused_by_the_provider(api_url, users, user, password) -> None:
    with OidcSignIn(api_url) as flow:
        flow.start()
        with pytest.raises(SignInRefused) as refused:
            flow.submit(user, password or "")
        assert refused.value.status == 401
        assert "Invalid username or password." in refused.value.text
        assert flow.token() is None
        assert flow.client.get(f"{api_url}/api/v2/dags?limit=1").status_code == 401


def test_an_unknown_user_gets_no_account(api_url, admin) -> None:
    with OidcSignIn(api_url) as flow:
        flow.start()
        with pytest.raises(SignInRefused):
            flow.submit("mallory", "guess")
    assert _get(admin, "/auth/fab/v1/users/mallory")[0] == 404


def test_a_code_issued_to_another_client_is_refused(platform, api_url, users, admin) -> None:
    """A code the provider issued to another registered client (other-app), delivered to
    Airflow's callback with a valid state of the attacker's own sign-in."""
    stolen = _code_for_other_client(platform.oidc().issuer, "admin", users["admin"])
    before = login_count(admin, "admin")
    with OidcSignIn(api_url) as thief:
        thief.start()
        fresh = thief.submit("viewer", users["viewer"])
        assert_refused(thief, thief.callback(with_param(fresh, code=stolen)))
    assert login_count(admin, "admin") == before


def _code_for_other_client(issuer: str, user: str, password: str) -> str:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urlencode(
        {
            "client_id": oidc.OTHER_CLIENT_ID,
            "response_type": "code",
            "scope": "openid groups",
            "redirect_uri": oidc.OTHER_CLIENT_REDIRECT,
            "state": secrets.token_urlsafe(8),
            "nonce": secrets.token_urlsafe(8),
            "code_challenge": challenge.rstrip(b"=").decode(),
            "code_challenge_method": "S256",
        }
    )
    with httpx.Client(follow_redirects=False, timeout=30) as client:
        response = client.get(f"{issuer}/auth?{query}")
        for _ in range(10):
            location = urljoin(str(response.url), response.headers.get("location", ""))
            if location.startswith(oidc.OTHER_CLIENT_REDIRECT):
                return _q(location, "code")
            if not response.is_redirect:
                action = re.search(r'action="([^"]+)"', response.text)
                assert action, response.text[:500]
                response = client.post(
                    urljoin(str(response.url), action.group(1)),
                    data={"username": user, "password": password},
                )
            else:
                response = client.get(location)
    raise AssertionError("the provider issued no code to the other client")


def test_a_provider_password_gets_no_api_token(api_url, users) -> None:
    """/auth/token knows FAB database users only: an OpenID Connect user has no password
    there, whatever it sends (its provider password included)."""
    for password in (users["admin"], "", "x"):
        answer = httpx.post(
            f"{api_url}/auth/token", json={"username": "admin", "password": password}
        )
        assert answer.status_code in (400, 401), answer.text
        assert "access_token" not in answer.text
