"""Register fits through a running service's admin API (what operators use in production:
the training machine needs the URL and the admin token, not database credentials)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import httpx

from training.registration import FitRegistration


class RegistrationError(RuntimeError):
    """The service refused the registration; the message is the service's own."""


@dataclass(frozen=True)
class RegisteredVersion:
    name: str
    version: int
    detail: dict[str, Any]


def _error_message(response: httpx.Response) -> str:
    try:
        error = response.json()["error"]
        return f"{response.status_code} {error['code']}: {error['message']}"
    except (ValueError, KeyError, TypeError):
        return f"{response.status_code}: {response.text[:500]}"


def register_via_api(url: str, token: str, registration: FitRegistration,
                     timeout_s: float = 120.0) -> RegisteredVersion:
    """Upload the artifact (with its sha256, so a corrupted transfer is refused), then its
    InferenceData and files: the same calls, and so the same audit entries, as
    `register_in_database` makes in one unit of work."""
    headers = {"Authorization": f"Bearer {token}", "X-Actor": registration.actor}
    params: dict[str, str | list[str]] = {
        "sha256": hashlib.sha256(registration.artifact).hexdigest(),
        "source": registration.source,
        "tag": [f"{key}={value}" for key, value in registration.tags.items()]}
    if registration.alias:
        params["alias"] = registration.alias
    if registration.description:
        params["description"] = registration.description
    name = registration.name
    with httpx.Client(base_url=url.rstrip("/"), headers=headers, timeout=timeout_s) as client:
        response = client.post(f"/admin/models/{name}/versions", params=params,
                               content=registration.artifact,
                               headers={"content-type": "application/octet-stream"})
        if response.status_code != 201:
            raise RegistrationError(_error_message(response))
        detail = response.json()
        version = f"/admin/models/{name}/versions/{detail['version']}"
        if registration.inference_data is not None:
            attach = client.put(f"{version}/inference-data",
                                content=registration.inference_data,
                                headers={"content-type": "application/x-netcdf"})
            if attach.status_code != 204:
                raise RegistrationError(f"version {detail['version']} was registered, but "
                                        f"its inference data was refused: "
                                        f"{_error_message(attach)}")
        for path, data in registration.files.items():
            # 201 stored, 200 already there with the same bytes (a retried upload).
            put = client.put(f"{version}/files/{path}", content=data,
                             headers={"content-type": "image/png"})
            if put.status_code not in (200, 201):
                raise RegistrationError(f"version {detail['version']} was registered, but "
                                        f"its file {path!r} was refused: "
                                        f"{_error_message(put)}")
    return RegisteredVersion(name, int(detail["version"]), detail)


def model_detail(url: str, name: str, timeout_s: float = 30.0) -> dict[str, Any] | None:
    """A registered model's aliases and versions (with their tags) as the service lists
    them, or None when it has no model of that name."""
    response = httpx.get(f"{url.rstrip('/')}/v1/models/{name}", timeout=timeout_s)
    if response.status_code == 404:
        return None
    if response.status_code != 200:
        raise RegistrationError(_error_message(response))
    return response.json()  # type: ignore[no-any-return]
