"""Python client of the material surrogate service (needs only httpx, numpy and orjson)."""

from surrogate_client.client import (
    ExportResult,
    PredictResult,
    SurrogateAPIError,
    SurrogateClient,
    export,
    predict,
)

__all__ = ["ExportResult", "PredictResult", "SurrogateAPIError", "SurrogateClient", "export",
           "predict"]
