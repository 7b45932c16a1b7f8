"""Behind a company network: the CA bundle and proxies of the environment, as `requests` reads them."""

from __future__ import annotations

import re
import ssl
import threading
import warnings

import pytest
import requests
import trustme

from tests.loopback_proxy import CountingProxy
from tests.tap_runner import emulator_config, run_tap, tap_log

CA_VARIABLES = ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")


@pytest.fixture
def company_ca(tmp_path):
    """A throw-away CA (a TLS-inspecting proxy's, say), its PEM bundle, and a server context it signed."""
    ca = trustme.CA(organization_name="Example Corp inspection CA")
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server)
    bundle = tmp_path / "company-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    return bundle, server


@pytest.fixture
def clean_environment(monkeypatch):
    """No CA bundle or proxy variables from the machine running the tests."""
    for name in (
        *CA_VARIABLES,
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "NO_PROXY",
        "http_proxy",
        "https_proxy",
        "no_proxy",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize("variable", CA_VARIABLES)
def test_a_ca_bundle_in_the_environment_is_trusted_as_requests_trusts_it(
    start_emulator, tmp_path, company_ca, variable
):
    bundle, server_context = company_ca
    emulator = start_emulator(5, 100, tls=server_context)
    assert emulator.api_url.startswith("https://127.0.0.1:")
    # What every requests-based tool does with the variable:
    with pytest.raises(requests.exceptions.SSLError):
        requests.get(emulator.api_url + "/conversations", timeout=10)
    assert (
        requests.get(emulator.api_url + "/conversations", timeout=10, verify=str(bundle)).status_code == 401
    )

    run = run_tap(emulator_config(emulator), tmp_path, env={variable: str(bundle)})

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records["conversations"]) == 5
    assert len(run.records["messages"]) == 100


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize("bundle_in_use", ["certifi", "another CA"])
def test_a_certificate_that_does_not_verify_is_one_line_and_never_retried(
    start_emulator, tmp_path, company_ca, bundle_in_use
):
    _bundle, server_context = company_ca
    emulator = start_emulator(5, 100, tls=server_context)
    env, named = {}, "the CA bundle of certifi"
    if bundle_in_use == "another CA":
        other = tmp_path / "other-ca.pem"
        trustme.CA().cert_pem.write_to_path(str(other))
        env, named = {"REQUESTS_CA_BUNDLE": str(other)}, f"the CA bundle REQUESTS_CA_BUNDLE={other}"

    run = run_tap(emulator_config(emulator, max_retry_seconds=60), tmp_path, env=env)

    assert run.returncode == 1
    assert tap_log(run.stderr, "ERROR") == [
        "Cannot verify the TLS certificate of 127.0.0.1 (unable to get local issuer certificate) "
        f"with {named}. If your network "
        "inspects TLS (a company proxy), point REQUESTS_CA_BUNDLE at a PEM file holding your "
        "company's CA certificate"
    ], run.stderr[-2000:]
    assert "Retrying" not in run.stderr
    assert "Traceback" not in run.stderr
    assert "(0 retries)" in run.stderr
    assert emulator.state.stats["requests"] == 0


@pytest.fixture
def tls_1_0_only(company_ca):
    """A server context offering TLS 1.0 alone, which the tap's OpenSSL refuses: no handshake can succeed."""
    _bundle, server_context = company_ca
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # ssl.TLSVersion.TLSv1, on purpose
        server_context.minimum_version = server_context.maximum_version = ssl.TLSVersion.TLSv1
    return server_context


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize(
    ("server", "expected"),
    [
        (
            "plain http",
            r"TLS with 127\.0\.0\.1:{port} failed \([a-z0-9 ]+\): the server does not speak TLS there "
            r"\(a plain http server\?\); check api_url's scheme \(https:// or http://\) and port",
        ),
        (
            "TLS 1.0 only",
            # The reason is OpenSSL's words, which vary with its version ("alert handshake failure").
            r"TLS with 127\.0\.0\.1:{port} failed \([a-z0-9 ]+\): the server and the tap share no TLS "
            r"version or cipher, and retrying cannot change that; check api_url, or the proxy in between",
        ),
    ],
)
def test_a_tls_handshake_that_cannot_succeed_is_one_line_and_never_retried(
    start_emulator, tmp_path, request, server, expected
):
    if server == "plain http":
        emulator = start_emulator(5, 100)
        api_url = emulator.api_url.replace("http://", "https://")
    else:
        emulator = start_emulator(5, 100, tls=request.getfixturevalue("tls_1_0_only"))
        api_url = emulator.api_url
    port = api_url.split(":")[2].split("/")[0]

    run = run_tap(emulator_config(emulator, api_url=api_url, max_retry_seconds=5), tmp_path)

    assert run.returncode == 1
    [error] = tap_log(run.stderr, "ERROR")
    assert re.fullmatch(expected.format(port=port), error), run.stderr[-2000:]
    assert "Retrying" not in run.stderr
    assert "Traceback" not in run.stderr
    assert emulator.state.stats["requests"] == 0


@pytest.fixture
def proxy():
    server = CountingProxy()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.usefixtures("clean_environment")
@pytest.mark.parametrize("no_proxy", [None, "127.0.0.1", "localhost,127.0.0.0/8"])
def test_proxies_and_no_proxy_from_the_environment_are_honoured(start_emulator, tmp_path, proxy, no_proxy):
    emulator = start_emulator(5, 100)
    env = {"HTTP_PROXY": proxy.url} | ({"NO_PROXY": no_proxy} if no_proxy else {})

    run = run_tap(emulator_config(emulator), tmp_path, env=env)

    assert run.returncode == 0, run.stderr[-2000:]
    assert len(run.records["messages"]) == 100
    served = emulator.state.stats["requests"]
    assert served > 0
    assert proxy.relayed == (0 if no_proxy else served)
