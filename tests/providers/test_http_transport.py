"""The transport rule every HTTP provider shares: retry only what surely never arrived."""

import socket
import threading

import pytest
import requests
import responses

from providers.base import ProviderError
from providers.http import HttpTransport

URL = "https://gateway.test/send"


@pytest.fixture
def transport():
    return HttpTransport(name="Gateway", connect_timeout=0.5, read_timeout=0.5, session=requests.Session())


def _outcome(transport, **kwargs) -> str:
    try:
        response = transport.request("POST", URL, **kwargs)
        transport.json(response, auxiliary=kwargs.get("auxiliary", False))
    except ProviderError as error:
        return "unknown" if error.outcome_unknown else ("retry" if not error.permanent else "failed")
    return "answer"


@pytest.mark.parametrize(
    "status,outcome",
    [(200, "answer"), (400, "answer"), (429, "retry"), (503, "retry"), (500, "unknown"), (502, "unknown"), (504, "unknown")],
)  # fmt: skip
@responses.activate
def test_http_statuses(transport, status, outcome):
    responses.post(URL, json={"ok": True}, status=status)
    assert _outcome(transport) == outcome


@responses.activate
def test_an_unreadable_answer_is_unknown_but_retryable_for_an_auxiliary_call(transport):
    responses.post(URL, body="<html>oops</html>", status=200)
    assert _outcome(transport) == "unknown"
    assert _outcome(transport, auxiliary=True) == "retry"


@responses.activate
def test_a_5xx_of_an_auxiliary_call_is_retryable(transport):
    responses.post(URL, status=500)
    assert _outcome(transport, auxiliary=True) == "retry"


def test_connection_refused_is_retryable(transport):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # nothing listens once it is closed
    with pytest.raises(ProviderError) as error:
        transport.request("POST", f"http://127.0.0.1:{port}/send")
    assert not error.value.permanent and "could not be reached" in error.value.message


@pytest.fixture
def silent_server():
    """Accepts connections and reads the request, then never answers (accept-then-hang)."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    stop = threading.Event()

    def serve():
        server.settimeout(0.1)
        connections = []
        while not stop.is_set():
            try:
                connection, _ = server.accept()
                connection.recv(65536)
                connections.append(connection)
            except TimeoutError:
                continue
        for connection in connections:
            connection.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.getsockname()[1]}/send"
    stop.set()
    thread.join()
    server.close()


def test_a_request_sent_and_never_answered_is_unknown(transport, silent_server):
    with pytest.raises(ProviderError) as error:
        transport.request("POST", silent_server, json={"to": "x"})
    assert error.value.outcome_unknown and "did not answer in time" in error.value.message


def test_an_auxiliary_call_never_answered_is_retryable(transport, silent_server):
    with pytest.raises(ProviderError) as error:
        transport.request("GET", silent_server, auxiliary=True)
    assert not error.value.permanent and not error.value.outcome_unknown


def test_a_stopped_fake_cuts_kept_alive_connections_like_a_real_outage(fake_submail):
    """Tests and `make chaos` stop a fake to take a gateway down; a connection the client kept
    alive must not keep working."""
    import requests

    session = requests.Session()
    assert session.post(f"{fake_submail.url}/service/timestamp", timeout=2).status_code == 200
    fake_submail.stop()
    with pytest.raises(requests.ConnectionError):
        session.post(f"{fake_submail.url}/service/timestamp", timeout=2)
