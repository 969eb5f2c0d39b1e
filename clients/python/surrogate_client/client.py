"""Python client of the prediction API: numpy in, numpy out, with timeouts and retries.

    from surrogate_client import SurrogateClient
    with SurrogateClient("http://127.0.0.1:8000") as client:
        result = client.predict("demo", np.linspace(-0.4, 0.4, 1000), tangent=True)
        result.mean, result.total_sd, result.tangent          # numpy arrays

or, for one call, `surrogate_client.predict("demo", strains, base_url=...)`.
`client.export("demo", quantiles=[0.05, 0.95])` returns the model as a table (numpy
arrays; `.interpolate(strain)`), `client.export("demo", path="demo.inp")` writes the file
in the format its suffix names (docs/export.md).

Predictions are pure functions of the request, so a retry never changes an answer; it
can double the work, though. So what is retried is what the service did not compute:
failures to connect or to get any answer, and 429/502/503 answers, with exponential
backoff and jitter, never sooner than a Retry-After says (an answer asking for a longer
wait than `max_backoff` is raised instead). Not retried: a read timeout or a 504 (the
service may still be computing the request: sending it again doubles the load that made
it slow), a 413 (the request is over a budget and stays over it), and every other error,
which raises SurrogateAPIError with the service's error code, message and details.

Why one module of this size: the client is a single file users may vendor; its request
options mirror the API's and share one retry loop.
"""

from __future__ import annotations

import random
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson

RETRY_STATUSES = frozenset({429, 502, 503})
# The request did not reach the service, or no answer came back at all (a replica that
# stopped, a keep-alive connection the server had just closed). A read timeout is not here:
# the service has the request and may still be computing it.
RETRY_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout,
                httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class SurrogateAPIError(Exception):
    """The service answered with an error (the uniform {"error": {...}} body)."""

    def __init__(self, status: int, code: str, message: str, details: list | None = None,
                 request_id: str | None = None) -> None:
        super().__init__(f"HTTP {status} {code}: {message}")
        self.status, self.code, self.message = status, code, message
        self.details = details or []
        self.request_id = request_id


@dataclass(frozen=True)
class PredictResult:
    model: str
    version: int
    strain: np.ndarray
    mean: np.ndarray
    aleatoric_sd: np.ndarray
    epistemic_sd: np.ndarray
    total_sd: np.ndarray
    outside_training_domain: np.ndarray | None = None
    tangent: np.ndarray | None = None
    tangent_epistemic_sd: np.ndarray | None = None
    quantile_levels: np.ndarray | None = None
    quantiles: np.ndarray | None = None  # (levels, strains)
    samples: np.ndarray | None = None  # (strains, draws)
    seed: int | None = None
    # Models fitted on grouped data (docs/curves.md): the split of aleatoric_sd.
    between_material_sd: np.ndarray | None = None
    within_material_sd: np.ndarray | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)


@dataclass(frozen=True)
class ExportResult:
    """A model version's table (GET /v1/models/{name}/export, format=json)."""

    model: str
    version: int
    artifact_sha256: str
    strain: np.ndarray
    # Column name -> values: mean, aleatoric_sd, epistemic_sd, total_sd, tangent,
    # tangent_epistemic_sd, then q<level> per quantile and curve_<j> per curve.
    columns: dict[str, np.ndarray]
    max_interpolation_error: float
    unstable_strain_ranges: list[dict[str, Any]]
    quantile_levels: list[float]
    seed: int | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def __getitem__(self, column: str) -> np.ndarray:
        return self.strain if column == "strain" else self.columns[column]

    def interpolate(self, strain: Any, column: str = "mean") -> np.ndarray:
        """Linear interpolation of one column (what a solver does with the table); within
        max_interpolation_error total SDs of the model inside the grid."""
        return np.interp(np.asarray(strain, dtype=np.float64), self.strain,
                         self.columns[column])


_FORMAT_BY_SUFFIX = {".json": "json", ".inp": "abaqus", ".k": "lsdyna", ".key": "lsdyna"}

_ARRAYS = ("strain", "mean", "aleatoric_sd", "epistemic_sd", "total_sd", "tangent",
           "tangent_epistemic_sd", "quantile_levels", "quantiles", "samples",
           "between_material_sd", "within_material_sd")


class SurrogateClient:
    def __init__(self, base_url: str = "http://127.0.0.1:8000", *, timeout: float = 30.0,
                 connect_timeout: float = 5.0, retries: int = 3, backoff: float = 0.2,
                 max_backoff: float = 5.0, headers: dict[str, str] | None = None) -> None:
        self.retries, self.backoff, self.max_backoff = retries, backoff, max_backoff
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            timeout=httpx.Timeout(timeout, connect=connect_timeout),
            headers={"content-type": "application/json", **(headers or {})},
        )

    def __enter__(self) -> SurrogateClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def predict(
        self,
        name: str,
        strains: Any,
        *,
        version: int | None = None,
        alias: str | None = None,
        quantiles: list[float] | None = None,
        tangent: bool = False,
        draws: int | None = None,
        seed: int | None = None,
        extrapolation: str | None = None,
        request_id: str | None = None,
        observed: tuple[Any, Any] | None = None,
        covariates: dict[str, Any] | None = None,
        observed_covariates: dict[str, Any] | None = None,
    ) -> PredictResult:
        """Posterior predictive summaries for `strains` (any array-like of numbers);
        `observed=(strains, stresses)` of one material answers for that material.
        A model with covariates takes `covariates={"temperature": 353.0}`: a number for
        every strain, or one value per strain; `observed_covariates` gives the observed
        points' condition when it is not the request's."""
        body: dict[str, Any] = {"strain": np.asarray(strains, dtype=np.float64).ravel()}
        if covariates is not None:
            body["covariates"] = _covariate_values(covariates)
        if observed is not None:
            body["observed"] = {"strain": np.asarray(observed[0], dtype=np.float64).ravel(),
                                "stress": np.asarray(observed[1], dtype=np.float64).ravel()}
            if observed_covariates is not None:
                body["observed"]["covariates"] = _covariate_values(observed_covariates)
        options = {"version": version, "alias": alias, "quantiles": quantiles,
                   "draws": draws, "seed": seed, "extrapolation": extrapolation}
        body.update({k: v for k, v in options.items() if v is not None})
        if tangent:
            body["tangent"] = True
        content = orjson.dumps(body, option=orjson.OPT_SERIALIZE_NUMPY)
        headers = {"x-request-id": request_id} if request_id else None
        payload = self._post(f"/v1/models/{name}/predict", content, headers)
        arrays = {k: np.asarray(payload[k], dtype=np.float64)
                  for k in _ARRAYS if payload.get(k) is not None}
        flags = payload.get("outside_training_domain")
        return PredictResult(
            model=payload["model"], version=payload["version"],
            outside_training_domain=None if flags is None else np.asarray(flags, dtype=bool),
            seed=payload.get("seed"), raw=payload, **arrays,
        )

    def export(
        self,
        name: str,
        *,
        path: str | Path | None = None,
        format: str | None = None,  # noqa: A002  (the API's parameter name)
        version: int | None = None,
        alias: str | None = None,
        strain_min: float | None = None,
        strain_max: float | None = None,
        points: int | None = None,
        quantiles: list[float] | None = None,
        curves: int | None = None,
        seed: int | None = None,
        max_interpolation_error: float | None = None,
        first_curve_id: int | None = None,
        covariates: dict[str, float] | None = None,
        over: str | None = None,
        form: str | None = None,
        bulk_ratio: float | None = None,
        bulk_modulus: float | None = None,
        stable_strain_min: float | None = None,
        stable_strain_max: float | None = None,
    ) -> ExportResult | Path:
        """The model as a table. With `path`: writes the file in `format` (csv, json,
        abaqus, lsdyna, calculix; by default from the path's suffix: .json, .inp,
        .k/.key, else csv) and returns the path. Without: returns the table as numpy
        arrays (fetched as JSON; fitted cards, with `form`, in `raw["cards"]`).
        `covariates={"temperature": 353.15}` picks a model's condition; `over` is the
        API's NAME or NAME:V1,V2,... (one table per value); `form` and the bulk and
        stable-strain options ask for fitted hyperelastic cards."""
        if path is not None and format is None:
            format = _FORMAT_BY_SUFFIX.get(Path(path).suffix.lower(), "csv")  # noqa: A001
        query: dict[str, Any] = {
            "version": version, "alias": alias, "strain_min": strain_min,
            "strain_max": strain_max, "points": points, "curves": curves, "seed": seed,
            "max_interpolation_error": max_interpolation_error,
            "first_curve_id": first_curve_id, "over": over, "form": form,
            "bulk_ratio": bulk_ratio, "bulk_modulus": bulk_modulus,
            "stable_strain_min": stable_strain_min, "stable_strain_max": stable_strain_max,
            "format": format if path is not None else "json",
        }
        if quantiles is not None:
            query["quantiles"] = ",".join(repr(float(q)) for q in quantiles)
        if covariates is not None:
            query["covariates"] = ",".join(f"{name}:{float(value)!r}"
                                           for name, value in covariates.items())
        params = {k: v for k, v in query.items() if v is not None}
        content = self._request("GET", f"/v1/models/{name}/export", None, None,
                                params=params, decode=False)
        if path is not None:
            target = Path(path)
            target.write_bytes(content)
            return target
        payload = orjson.loads(content)
        names = [n for n in payload["columns"] if n != "strain"]
        return ExportResult(
            model=payload["model"], version=payload["version"],
            artifact_sha256=payload["artifact_sha256"],
            strain=np.asarray(payload["strain"], dtype=np.float64),
            columns={n: np.asarray(payload[n], dtype=np.float64) for n in names},
            max_interpolation_error=payload["max_interpolation_error"],
            unstable_strain_ranges=payload["unstable_strain_ranges"],
            quantile_levels=payload["quantile_levels"], seed=payload["seed"], raw=payload,
        )

    def models(self) -> list[dict[str, Any]]:
        return self._request("GET", "/v1/models", None, None)

    def _post(self, path: str, content: bytes, headers: dict | None) -> dict[str, Any]:
        return self._request("POST", path, content, headers)

    def _request(self, method: str, path: str, content: bytes | None,
                 headers: dict | None, params: dict[str, Any] | None = None,
                 decode: bool = True) -> Any:
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, content=content, headers=headers,
                                              params=params)
            except RETRY_ERRORS:
                if attempt >= self.retries:
                    raise
                retry_after = None
            else:
                if response.status_code < 400:
                    return orjson.loads(response.content) if decode else response.content
                retry_after = _retry_after(response)
                if (response.status_code not in RETRY_STATUSES or attempt >= self.retries
                        or (retry_after is not None and retry_after > self.max_backoff)):
                    raise _api_error(response)
            time.sleep(self._delay(attempt, retry_after))
            attempt += 1

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        """Exponential backoff with jitter (so clients refused together do not come back
        together), never shorter than the service's Retry-After."""
        backoff = min(self.backoff * 2**attempt, self.max_backoff) * random.uniform(0.5, 1.0)
        return max(backoff, retry_after or 0.0)


def _retry_after(response: httpx.Response) -> float | None:
    try:
        return max(0.0, float(response.headers["retry-after"]))
    except (KeyError, ValueError):
        return None


def _api_error(response: httpx.Response) -> SurrogateAPIError:
    request_id = response.headers.get("x-request-id")
    try:
        error = orjson.loads(response.content)["error"]
        return SurrogateAPIError(response.status_code, error["code"], error["message"],
                                 error.get("details"), request_id)
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return SurrogateAPIError(response.status_code, "http_error",
                                 response.text[:500] or response.reason_phrase,
                                 request_id=request_id)


def _covariate_values(covariates: dict[str, Any]) -> dict[str, Any]:
    """A number stays a number; anything array-like becomes one float per strain."""
    return {name: float(value) if np.ndim(value) == 0
            else np.asarray(value, dtype=np.float64).ravel()
            for name, value in covariates.items()}


def export(name: str, base_url: str = "http://127.0.0.1:8000", timeout: float = 300.0,
           retries: int = 3, **options: Any) -> ExportResult | Path:
    """One-shot `SurrogateClient(base_url).export(name, **options)`."""
    with SurrogateClient(base_url, timeout=timeout, retries=retries) as client:
        return client.export(name, **options)


def predict(name: str, strains: Any, base_url: str = "http://127.0.0.1:8000",
            timeout: float = 30.0, retries: int = 3, **options: Any) -> PredictResult:
    """One-shot `SurrogateClient(base_url).predict(name, strains, **options)`."""
    with SurrogateClient(base_url, timeout=timeout, retries=retries) as client:
        return client.predict(name, strains, **options)
