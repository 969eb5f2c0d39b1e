"""Python client of the material surrogate service (needs only httpx, numpy and orjson)."""

from surrogate_client.client import PredictResult, SurrogateAPIError, SurrogateClient, predict

__all__ = ["PredictResult", "SurrogateAPIError", "SurrogateClient", "predict"]
