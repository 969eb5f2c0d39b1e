"""SURROGATE_ADMIN_PORT: `surrogate-serve` listens on a second port, answers /admin only
there and nothing else there, so a NetworkPolicy (by port) can keep the admin API from
predict clients."""

from __future__ import annotations

from pathlib import Path

import httpx

from tests.live_server import live_server
from tests.service_process import free_port

TOKEN = "tok-for-admin-port"


def test_the_admin_api_answers_on_its_own_port_only(tmp_path: Path) -> None:
    admin_port = free_port()
    with live_server(tmp_path, SURROGATE_ADMIN_PORT=str(admin_port),
                     SURROGATE_ADMIN_TOKEN=TOKEN) as server:
        auth = {"authorization": f"Bearer {TOKEN}"}
        admin_url = f"http://127.0.0.1:{admin_port}"
        on_admin_port = httpx.get(f"{admin_url}/admin/audit", headers=auth, timeout=10)
        assert on_admin_port.status_code == 200, on_admin_port.text
        on_main_port = httpx.get(f"{server.base_url}/admin/audit", headers=auth, timeout=10)
        assert on_main_port.status_code == 404
        assert httpx.get(f"{admin_url}/v1/models", timeout=10).status_code == 404
        assert httpx.post(f"{admin_url}/v1/models/demo/predict", json={"strain": [0.1]},
                          timeout=10).status_code == 404
        predicted = httpx.post(f"{server.base_url}/v1/models/demo/predict",
                               json={"strain": [0.1]}, timeout=10)
        assert predicted.status_code == 200


def test_without_an_admin_port_the_admin_api_is_on_the_main_port(tmp_path: Path) -> None:
    with live_server(tmp_path, SURROGATE_ADMIN_TOKEN=TOKEN) as server:
        answer = httpx.get(f"{server.base_url}/admin/audit", timeout=10,
                           headers={"authorization": f"Bearer {TOKEN}"})
        assert answer.status_code == 200
