"""Sign in to Airflow through its OpenID Connect provider without a browser.

The same requests a browser makes, in order: Airflow's FAB login sends the user to the
provider's authorization endpoint, the provider's sign-in form takes a user name and
password, the provider redirects back to Airflow's callback with a code and the state,
and Airflow answers with its session and the API token (the `_token` cookie, a JWT the
REST API accepts as `Authorization: Bearer`). Each step is a method, so a test can stop
before the callback and tamper with it.
"""

from __future__ import annotations

import re
from urllib.parse import urlencode, urljoin

import httpx

TOKEN_COOKIE = "_token"  # Airflow's API token cookie (base_auth_manager.COOKIE_NAME_JWT_TOKEN)
_FORM_ACTION = re.compile(r'<form[^>]*action="([^"]+)"')


class SignInRefused(RuntimeError):
    """The provider or Airflow refused the sign-in; .status and .text tell how."""

    def __init__(self, message: str, status: int, text: str) -> None:
        super().__init__(message)
        self.status = status
        self.text = text


class OidcSignIn:
    """One browser-like sign-in: start() -> submit() -> callback()."""

    def __init__(self, api_url: str, provider: str = "oidc", timeout: float = 30) -> None:
        self.api_url = api_url.rstrip("/")
        self.provider = provider
        self.client = httpx.Client(follow_redirects=False, timeout=timeout)
        self.form_url = ""

    def __enter__(self) -> OidcSignIn:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.client.close()

    def _follow(self, response: httpx.Response, until_api: bool) -> httpx.Response:
        """Follow redirects; with until_api, stop at the first one pointing into Airflow."""
        for _ in range(10):
            if not response.is_redirect:
                return response
            location = urljoin(str(response.url), response.headers["location"])
            if until_api and location.startswith(self.api_url):
                return response
            response = self.client.get(location)
        raise SignInRefused("too many redirects", response.status_code, response.text)

    def start(self, next_path: str = "/") -> str:
        """Airflow's login for the provider, up to the provider's sign-in form; its URL."""
        query = urlencode({"next": f"{self.api_url}{next_path}"})
        page = self._follow(
            self.client.get(f"{self.api_url}/auth/login/{self.provider}?{query}"), False
        )
        match = _FORM_ACTION.search(page.text)
        if page.status_code != 200 or not match:
            raise SignInRefused("no sign-in form at the provider", page.status_code, page.text)
        self.form_url = urljoin(str(page.url), match.group(1))
        return str(page.url)

    def submit(self, username: str, password: str) -> str:
        """Post the credentials; returns the callback URL the provider sends the browser to."""
        posted = self.client.post(self.form_url, data={"username": username, "password": password})
        answer = self._follow(posted, True)
        if not answer.is_redirect:
            raise SignInRefused(
                f"the provider refused {username!r}", answer.status_code, answer.text
            )
        return urljoin(str(answer.url), answer.headers["location"])

    def callback(self, url: str) -> httpx.Response:
        """Deliver the provider's answer to Airflow (not followed: its redirect tells)."""
        return self.client.get(url)

    def token(self) -> str | None:
        return self.client.cookies.get(TOKEN_COOKIE)


def api_token(api_url: str, username: str, password: str) -> str:
    """An Airflow REST API token for a user of the OpenID Connect provider."""
    with OidcSignIn(api_url) as flow:
        flow.start()
        answer = flow.callback(flow.submit(username, password))
        token = flow.token()
        if not token:
            raise SignInRefused(
                f"Airflow did not sign {username!r} in (callback -> {answer.status_code} "
                f"{answer.headers.get('location', '')})",
                answer.status_code,
                answer.text,
            )
        return token
