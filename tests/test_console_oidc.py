"""Console login through a real OpenID provider: the authorization-code flow with PKCE in
Debian's Chromium, against panva's `oidc-provider` (tests/oidc/server.mjs) and a real
`interlock serve` that trusts it. The provider's development login form accepts any name;
`olivia` gets the `interlock-operators` group, `vera` `interlock-viewers`, and the bindings
file below turns those groups into roles.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from textwrap import dedent
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from fixtures_browser import NEEDS_CHROMIUM
from oidc_harness import AUDIENCE, OidcProvider
from serving import env_for, interlock, serving

from interlock.console import files

pytestmark = NEEDS_CHROMIUM
pytest.importorskip("playwright.sync_api", reason="pip install -e '.[dev]'")

API = "/api/v1"
CLIENT = "interlock-console"
TOKEN_KEY = "interlock.token"
BINDINGS = dedent("""
    groups:
      interlock-operators: [{role: operator, namespace: "*"}]
      interlock-viewers:   [{role: viewer, namespace: "*"}]
""")
FLOW = dedent("""
    id: slow
    namespace: shop
    nodes:
      wait: {uses: script, with: {command: ["sleep", "30"]}, timeout: 1m}
""")


@dataclass
class Site:
    base: str
    issuer: str
    admin: httpx.Client

    def start_slow_run(self) -> str:
        resp = self.admin.post(f"{API}/runs", json={"namespace": "shop", "flow_id": "slow"})
        assert resp.status_code == 201, resp.text
        return str(resp.json()["id"])


@pytest.fixture(scope="module")
def site(oidc_provider: OidcProvider, tmp_path_factory: pytest.TempPathFactory
         ) -> Iterator[Site]:
    if not files.built():
        pytest.fail(f"the console is not built: run `{files.BUILD_COMMAND}`")
    home = tmp_path_factory.mktemp("console-oidc")
    (home / "bindings.yaml").write_text(BINDINGS)
    env = env_for(home, INTERLOCK_OIDC_ISSUER=oidc_provider.issuer,
                  INTERLOCK_OIDC_AUDIENCE=AUDIENCE, INTERLOCK_OIDC_CONSOLE_CLIENT=CLIENT,
                  INTERLOCK_OIDC_CONSOLE_SCOPES="openid api",
                  INTERLOCK_OIDC_BINDINGS=str(home / "bindings.yaml"))
    made = interlock("tokens", "create", "--name", "oidc-admin", "--role", "admin",
                     "--namespace", "*", env=env)
    assert made.returncode == 0, made.stderr
    with serving(env, home / "serve.log") as base, httpx.Client(
            base_url=base, timeout=30,
            headers={"Authorization": f"Bearer {made.stdout.strip()}"}) as admin:
        assert admin.post(f"{API}/flows", json={"source": FLOW}).status_code == 201
        yield Site(base, oidc_provider.issuer, admin)


def _provider_login(page: Any, name: str) -> None:
    """The provider's own login form (its development interaction): any name is accepted,
    then its consent page is confirmed."""
    page.locator("input[name=login]").fill(name)
    page.locator("input[name=password]").fill("not-checked")
    page.locator("button[type=submit]").click()
    page.get_by_role("button", name="Continue").click()


def _pending(page: Any, site: Site) -> dict[str, str]:
    """The tab's pending login, read back on the console's origin (the tab is at the
    provider's login page, whose origin has its own storage)."""
    page.goto(f"{site.base}/")
    pending: dict[str, str] = page.evaluate(
        "JSON.parse(sessionStorage.getItem('interlock.oidc'))")
    return pending


def test_the_login_options_and_the_page_policy_name_the_issuer(site: Site) -> None:
    options = httpx.get(f"{site.base}{API}/login/options").json()  # public: no credential
    assert options == {"token": True, "oidc": {
        "issuer": site.issuer, "client_id": CLIENT, "resource": AUDIENCE,
        "scopes": "openid api"}}
    csp = httpx.get(f"{site.base}/").headers["content-security-policy"]
    assert f"connect-src 'self' {site.issuer}" in csp
    assert "script-src 'self';" in csp  # the issuer may be fetched from, never run


def test_an_operator_logs_in_with_pkce_and_lands_where_they_were(page: Any, site: Site
                                                                ) -> None:
    run_id = site.start_slow_run()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url) if r.url.startswith(site.issuer) else None)
    started = time.monotonic()
    page.goto(f"{site.base}/runs/{run_id}")
    page.get_by_test_id("login-oidc").click()
    _provider_login(page, "olivia")
    page.get_by_test_id("who").wait_for()
    print(f"login through the provider in {time.monotonic() - started:.2f}s")
    assert page.get_by_test_id("who").inner_text() == "oidc:olivia"
    # Back on the page the login started from, with the code gone from the address bar.
    page.get_by_test_id("run-state").wait_for()
    assert urlsplit(page.url).path == f"/runs/{run_id}" and "code=" not in page.url
    authorize = next(u for u in asked if "/auth?" in u or "/authorize?" in u)
    query = parse_qs(urlsplit(authorize).query)
    assert query["code_challenge_method"] == ["S256"] and len(query["code_challenge"][0]) == 43
    assert query["client_id"] == [CLIENT] and query["resource"] == [AUDIENCE]
    assert "code_verifier" not in authorize  # the verifier goes only to the token endpoint
    # The session holds the provider's access token, which the API accepts as the operator.
    token = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    assert token and token.count(".") == 2  # a JWT, not an Interlock token
    me = httpx.get(f"{site.base}{API}/me", headers={"Authorization": f"Bearer {token}"}).json()
    assert me["actor"] == "oidc:olivia" and me["groups"] == ["interlock-operators"]
    assert page.evaluate("sessionStorage.getItem('interlock.oidc')") is None  # used once
    page.get_by_test_id("cancel").click()
    page.locator("[data-testid=run-state].s-cancelled").wait_for(timeout=30_000)


def test_a_viewer_from_the_provider_gets_no_cancel_and_the_api_refuses_it(
        page: Any, site: Site) -> None:
    run_id = site.start_slow_run()
    page.goto(f"{site.base}/")
    page.get_by_test_id("login-oidc").click()
    _provider_login(page, "vera")
    page.get_by_test_id("who").wait_for()
    page.goto(f"{site.base}/runs/{run_id}")
    page.get_by_test_id("run-state").wait_for()
    assert page.get_by_test_id("cancel").count() == 0
    token = page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')")
    refused = httpx.post(f"{site.base}{API}/runs/{run_id}/cancel",
                         headers={"Authorization": f"Bearer {token}"})
    assert refused.status_code == 403 and "runs:cancel" in refused.text
    site.admin.post(f"{API}/runs/{run_id}/cancel")


def test_a_forged_or_replayed_callback_logs_nobody_in(page: Any, site: Site) -> None:
    # No login was started in this tab: a code arriving out of nowhere is refused.
    page.goto(f"{site.base}/login/callback?code=stolen&state=whatever")
    error = page.get_by_test_id("login-error")
    assert "no login was started" in error.inner_text()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    assert "code=" not in page.url
    # A login was started, but the answer carries another state (a CSRF'd callback).
    page.get_by_test_id("login-oidc").click()
    page.locator("input[name=login]").wait_for()
    page.goto(f"{site.base}/login/callback?code=stolen&state=forged&iss={site.issuer}")
    assert "state" in page.get_by_test_id("login-error").inner_text()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    # ... or comes from another issuer (RFC 9207: a mix-up attack).
    page.get_by_test_id("login-oidc").click()
    page.locator("input[name=login]").wait_for()
    pending = _pending(page, site)
    page.goto(f"{site.base}/login/callback?code=stolen&state={pending['state']}"
              "&iss=http://127.0.0.1:1")
    assert '"iss"' in page.get_by_test_id("login-error").inner_text()
    assert page.evaluate(f"sessionStorage.getItem('{TOKEN_KEY}')") is None
    # The provider says no (the person cancelled): its error is shown, nobody is logged in.
    page.get_by_test_id("login-oidc").click()
    page.locator("input[name=login]").wait_for()
    pending = _pending(page, site)
    page.goto(f"{site.base}/login/callback?error=access_denied&state={pending['state']}"
              f"&iss={site.issuer}")
    assert "access_denied" in page.get_by_test_id("login-error").inner_text()
    assert page.get_by_test_id("who").count() == 0


def test_an_open_redirect_after_login_is_not_followed(page: Any, site: Site) -> None:
    page.goto(f"{site.base}/")
    page.get_by_test_id("login-oidc").click()
    page.locator("input[name=login]").wait_for()
    page.go_back()
    page.get_by_test_id("login-oidc").wait_for()
    # Someone edits the tab's pending login to come back to another site: ignored.
    page.evaluate("""() => { const p = JSON.parse(sessionStorage.getItem('interlock.oidc'));
        p.returnTo = '//evil.example/x'; sessionStorage.setItem('interlock.oidc',
        JSON.stringify(p)); }""")
    page.go_forward()
    _provider_login(page, "vera")
    page.get_by_test_id("who").wait_for()
    assert urlsplit(page.url).netloc == urlsplit(site.base).netloc
    assert urlsplit(page.url).path == "/"


def test_without_a_console_client_only_token_login_is_offered(
        page: Any, tmp_path: Path, oidc_provider: OidcProvider) -> None:
    env = env_for(tmp_path, INTERLOCK_OIDC_ISSUER=oidc_provider.issuer,
                  INTERLOCK_OIDC_AUDIENCE=AUDIENCE)
    with serving(env, tmp_path / "serve.log") as base:
        assert httpx.get(f"{base}{API}/login/options").json() == {"token": True, "oidc": None}
        assert "connect-src 'self';" in httpx.get(f"{base}/").headers["content-security-policy"]
        page.goto(base + "/")
        page.get_by_test_id("token").wait_for()
        assert page.get_by_test_id("login-oidc").count() == 0
