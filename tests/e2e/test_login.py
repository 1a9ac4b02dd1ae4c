"""Signing in through the OpenID Connect provider in a real browser (Debian's chromium).

Each user signs in on the provider's own page, in a fresh browser context, and Airflow gives
the role mapped from the user's groups: a Viewer sees the DAGs and is refused a trigger (by
the UI's own request and by the REST API with the same token), an Op triggers a run, an Admin
reaches the security views; a user taken out of its group loses the role at its next login;
a tampered callback and a wrong password sign no one in. Screenshots go to artifacts/e2e/.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from airflow_platform.local.oidc_login import TOKEN_COOKIE
from airflow_platform.local.platform import LocalPlatform
from airflow_platform.procs import wait_until

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts" / "e2e"
CHROMIUM = "/usr/bin/chromium"
DAG = "example_hello"  # a DAG of the platform's examples, always present
CACHE_TTL_SECONDS = 30  # [fab] cache_ttl: how long an API server keeps a user's roles


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        pytest.fail("Debian's chromium package is required (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        # Debian's chromium, never a downloaded browser.
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu"],
        )
        yield chromium
        chromium.close()


class Session:
    """One user's browser context on the platform."""

    def __init__(self, browser, platform: LocalPlatform, name: str) -> None:
        self.api_url = platform.api_url()
        self.user = next(u for u in platform.sign_in_users() if u.name == name)
        self.context = browser.new_context(viewport={"width": 1280, "height": 800})
        self.page = self.context.new_page()
        self.page.set_default_timeout(120_000)  # a loaded 2-core machine

    def open_provider_page(self) -> None:
        """Airflow's sign-in page, then its button to the provider's own sign-in form."""
        self.page.goto(f"{self.api_url}/")
        self.page.click("#btn-signin-oidc")
        self.page.wait_for_selector("#username")

    def sign_in(self, password: str | None = None) -> float:
        """The whole browser sign-in; seconds from the first page to the Airflow UI."""
        began = time.monotonic()
        self.open_provider_page()
        self.page.fill("#username", self.user.name)
        self.page.fill("#password", password or self.user.password)
        self.page.click("#sign-in")
        from playwright.sync_api import TimeoutError as PlaywrightTimeout

        try:
            self.page.wait_for_url(lambda url: url.startswith(self.api_url) and "/auth/" not in url)
        except PlaywrightTimeout as error:  # say where the redirects stopped
            raise AssertionError(
                f"{self.user.name}'s sign-in never reached the UI; the page is at "
                f"{self.page.url}: {self.page.content()[:800]}"
            ) from error
        self.page.wait_for_load_state("networkidle")
        return time.monotonic() - began

    def token(self) -> str | None:
        cookies = {c["name"]: c["value"] for c in self.context.cookies(self.api_url)}
        return cookies.get(TOKEN_COOKIE)

    def rest(self, method: str, path: str, json: object = None) -> httpx.Response:
        """The REST API as a script calls it, with the token the sign-in gave this user."""
        headers = {"Authorization": f"Bearer {self.token()}"}
        return httpx.request(method, f"{self.api_url}{path}", headers=headers, json=json)

    def trigger_in_ui(self, dag_id: str) -> int:
        """Press Trigger on the DAG's page; the status of the request the UI sends."""
        page = self.page
        page.goto(f"{self.api_url}/dags/{dag_id}")
        page.get_by_role("button", name="Trigger").first.click()
        dialog = page.get_by_role("dialog")
        unpause = dialog.get_by_role("checkbox")
        if unpause.count() and unpause.first.is_checked():
            unpause.first.uncheck(force=True)  # the run is the proof; it need not execute
        with page.expect_response(
            lambda r: r.url.endswith(f"/dags/{dag_id}/dagRuns") and r.request.method == "POST"
        ) as answer:
            dialog.get_by_role("button", name="Trigger").click()
        return answer.value.status

    def shot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"login-{name}.png"))

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def session(browser, platform: LocalPlatform):
    opened: list[Session] = []

    def open_session(name: str) -> Session:
        opened.append(Session(browser, platform, name))
        return opened[-1]

    yield open_session
    for s in opened:
        s.close()


def test_viewer_sees_the_dags_and_cannot_trigger(session, capsys) -> None:
    viewer = session("viewer")
    seconds = viewer.sign_in()
    with capsys.disabled():
        print(f"\n[login] viewer: browser sign-in through the provider took {seconds:.1f}s")
    viewer.page.goto(f"{viewer.api_url}/dags")
    viewer.page.get_by_text(DAG, exact=True).first.wait_for()
    viewer.shot("viewer-dags")
    assert viewer.token(), "the sign-in gave the browser no API token"

    listed = viewer.rest("GET", "/api/v2/dags?limit=100")
    assert listed.status_code == 200, listed.text
    assert DAG in {d["dag_id"] for d in listed.json()["dags"]}

    assert viewer.trigger_in_ui(DAG) == 403
    viewer.page.get_by_text("403 Forbidden").first.wait_for()
    viewer.shot("viewer-trigger-refused")
    refused = viewer.rest("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None})
    assert refused.status_code == 403, refused.text
    me = viewer.rest("GET", f"/auth/fab/v1/users/{viewer.user.name}")
    assert me.status_code == 403  # the user list is an Admin's


def test_op_triggers_a_run(session) -> None:
    op = session("op")
    op.sign_in()
    assert op.trigger_in_ui(DAG) == 200
    op.shot("op-triggered")
    run = op.rest("POST", f"/api/v2/dags/{DAG}/dagRuns", {"logical_date": None})
    assert run.status_code == 200, run.text
    assert run.json()["dag_id"] == DAG
    assert op.rest("GET", "/auth/fab/v1/roles").status_code == 403  # security is an Admin's


def test_admin_reaches_the_admin_views(session, platform: LocalPlatform) -> None:
    for name in ("viewer", "op"):
        platform.api(name).token()  # each has signed in once, so FAB knows them
    admin = session("admin")
    admin.sign_in()
    admin.page.goto(f"{admin.api_url}/auth/users/list/")
    admin.page.get_by_text("List Users").first.wait_for()
    admin.shot("admin-users")
    for name, role in (("admin", "Admin"), ("viewer", "Viewer"), ("op", "Op")):
        user = admin.rest("GET", f"/auth/fab/v1/users/{name}")
        assert user.status_code == 200, user.text
        assert [r["name"] for r in user.json()["roles"]] == [role]
    assert admin.rest("GET", "/api/v2/connections").status_code == 200


def test_a_user_taken_out_of_its_group_loses_the_role_at_next_login(
    session, platform: LocalPlatform
) -> None:
    name = "user"
    first = session(name)
    first.sign_in()
    assert first.rest("GET", "/api/v2/dags?limit=1").status_code == 200  # User reads DAGs
    groups = first.user.groups
    platform.set_user_groups(name, [])
    try:
        again = session(name)
        again.sign_in()
        again.shot("user-without-group")
        # No mapped group: the default role (Public) replaced User at this sign-in...
        roles = platform.api("admin").get(f"/auth/fab/v1/users/{name}")["roles"]
        assert [r["name"] for r in roles] == ["Public"]
        # ...and the API server refuses it once its user cache ([fab] cache_ttl, 30 s)
        # lets go of the roles it had read before.
        wait_until(
            lambda: again.rest("GET", "/api/v2/dags?limit=1").status_code == 403,
            CACHE_TTL_SECONDS + 30,
            "the DAG list to be refused to a user left with the Public role",
            1.0,
        )
    finally:
        platform.set_user_groups(name, groups)
    restored = session(name)
    restored.sign_in()
    wait_until(
        lambda: restored.rest("GET", "/api/v2/dags?limit=1").status_code == 200,
        CACHE_TTL_SECONDS + 30,
        "the DAG list to be served again once the user is back in its group",
        1.0,
    )


@pytest.mark.parametrize("tamper", ["state", "code"])
def test_a_tampered_callback_signs_no_one_in(session, tamper: str) -> None:
    """The browser starts the sign-in (its Airflow session holds the state) and delivers a
    callback whose state or code was changed. The provider's answer is fetched with the
    browser's cookies but not followed: a browser follows it straight into Airflow, and
    Playwright cannot hold back a navigation that a redirect started."""
    viewer = session("viewer")
    page = viewer.page
    viewer.open_provider_page()
    action = page.eval_on_selector("form", "form => form.action")
    jar = httpx.Cookies()
    for cookie in viewer.context.cookies():
        jar.set(cookie["name"], cookie["value"], domain=cookie["domain"], path=cookie["path"])
    credentials = {"username": viewer.user.name, "password": viewer.user.password}
    with httpx.Client(cookies=jar, follow_redirects=False, timeout=60) as client:
        answer = client.post(action, data=credentials)
        for _ in range(10):
            location = str(answer.url.join(answer.headers.get("location", "")))
            if not answer.is_redirect or location.startswith(viewer.api_url):
                break
            answer = client.get(location)
    assert location.startswith(f"{viewer.api_url}/auth/oauth-authorized/oidc?"), location
    url = httpx.URL(location)
    value = url.params[tamper]
    changed = value[:-4] + ("AAAA" if value[-4:] != "AAAA" else "BBBB")
    page.goto(str(url.copy_set_param(tamper, changed)))
    page.get_by_text("The request to sign in was denied.").wait_for()
    viewer.shot(f"tampered-{tamper}")
    assert "/auth/login" in page.url
    assert viewer.token() is None
    # What the UI would send with this browser's cookies: refused, no one is signed in.
    assert page.request.get(f"{viewer.api_url}/api/v2/dags?limit=1").status == 401


def test_a_wrong_password_is_refused_at_the_provider(session) -> None:
    viewer = session("viewer")
    viewer.open_provider_page()
    viewer.page.fill("#username", viewer.user.name)
    viewer.page.fill("#password", viewer.user.password + "x")
    with viewer.page.expect_response(lambda r: r.request.method == "POST") as answer:
        viewer.page.click("#sign-in")
    assert answer.value.status == 401
    viewer.page.get_by_text("Invalid username or password.").wait_for()
    viewer.shot("wrong-password")
    assert not viewer.page.url.startswith(viewer.api_url)
    assert viewer.token() is None


def test_a_service_account_gets_an_api_token_with_its_password(platform: LocalPlatform) -> None:
    """Scripts without a browser: a FAB database user (created with Airflow's CLI in the API
    server's environment, as in its pod) posts its password to /auth/token."""
    name, password = platform.create_service_account("Op")
    url = platform.api_url()
    answer = httpx.post(f"{url}/auth/token", json={"username": name, "password": password})
    assert answer.status_code == 201, answer.text
    bearer = {"Authorization": f"Bearer {answer.json()['access_token']}"}
    run = httpx.post(
        f"{url}/api/v2/dags/{DAG}/dagRuns", json={"logical_date": None}, headers=bearer
    )
    assert run.status_code == 200, run.text  # Op triggers
    assert httpx.get(f"{url}/auth/fab/v1/roles", headers=bearer).status_code == 403
    wrong = httpx.post(f"{url}/auth/token", json={"username": name, "password": password + "x"})
    assert wrong.status_code == 401
