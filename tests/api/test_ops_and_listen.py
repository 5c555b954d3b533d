"""Where the API listens, and the ops token on /metrics and /readyz."""

from __future__ import annotations

import socket
from pathlib import Path

import requests
from sqlalchemy.engine import Engine

from sync_service.api.server import ApiServer
from sync_service.settings import load_settings
from tests.api.support import make_state, serving


def test_the_api_listens_on_loopback_unless_told_otherwise(tmp_path: Path) -> None:
    cfg = tmp_path / "settings.yaml"
    cfg.write_text("{}\n", encoding="utf-8")
    assert load_settings(str(cfg), {}).http_host == "127.0.0.1"
    told = load_settings(str(cfg), {"SYNC_HTTP_HOST": "0.0.0.0"})
    assert told.http_host == "0.0.0.0"


def test_the_server_binds_the_host_it_is_given(engine: Engine) -> None:
    srv = ApiServer(make_state(engine), "127.0.0.1", 0).start()
    try:
        assert srv._sock.getsockname()[0] == "127.0.0.1"
    finally:
        srv.stop()


def test_metrics_and_readyz_need_the_ops_token_when_one_is_set(engine: Engine) -> None:
    with serving(make_state(engine, ops_token="s3cret-ops")) as base:
        assert requests.get(f"{base}/healthz", timeout=10).status_code == 200
        for path in ("/metrics", "/readyz"):
            r = requests.get(base + path, timeout=10)
            assert r.status_code == 401
            assert "ops token" in r.json()["detail"]
            assert "s3cret" not in r.text
            wrong = {"Authorization": "Bearer nope"}
            assert requests.get(base + path, headers=wrong, timeout=10).status_code == 401
            right = {"Authorization": "Bearer s3cret-ops"}
            assert requests.get(base + path, headers=right, timeout=10).status_code == 200


def test_metrics_and_readyz_are_open_without_an_ops_token(engine: Engine) -> None:
    with serving(make_state(engine)) as base:
        assert requests.get(f"{base}/metrics", timeout=10).status_code == 200
        assert requests.get(f"{base}/readyz", timeout=10).status_code == 200


def test_the_docs_render_and_the_schema_types_the_bodies(engine: Engine) -> None:
    with serving(make_state(engine)) as base:
        assert "swagger" in requests.get(f"{base}/docs", timeout=10).text.lower()
        spec = requests.get(f"{base}/openapi.json", timeout=10).json()
    schemas = spec["components"]["schemas"]
    assert {"AskCheck", "AskCreate", "Verdict", "AskLogged", "Refused", "Advocate"} <= set(schemas)
    assert "409" in spec["paths"]["/v1/asks"]["post"]["responses"]
    assert spec["components"]["securitySchemes"]["HTTPBearer"]["scheme"] == "bearer"


def test_answers_are_not_held_back_by_nagle(engine: Engine) -> None:
    # Without TCP_NODELAY on the accepted connection, uvicorn's two writes per answer (head,
    # body) waited on the client's delayed ACK: 40 ms per request on a keep-alive connection.
    srv = ApiServer(make_state(engine), "127.0.0.1", 0).start()
    try:
        with socket.create_connection(("127.0.0.1", srv.port), timeout=10) as client:
            client.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert client.recv(4096).startswith(b"HTTP/1.1 200")
            conns = list(srv._server.server_state.connections)
            assert conns, "uvicorn should hold the open keep-alive connection"
            for proto in conns:
                accepted = proto.transport.get_extra_info("socket")
                assert accepted.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) != 0
    finally:
        srv.stop()
