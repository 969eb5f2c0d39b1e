from fastapi import APIRouter

from service.api.deps import SessionDep
from service.api.schemas import ModelSummary
from service.registry.repository import list_models

router = APIRouter(prefix="/v1/models", tags=["registry"])


@router.get("", response_model=list[ModelSummary], summary="Registered models")
def get_models(session: SessionDep) -> list[dict]:
    return list_models(session)
