"""Token routes (admin): create (the token is in the answer, once), list, revoke."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter
from pydantic import BaseModel, Field

from hived.http.deps import TokenStore
from hived.model.schemas import Strict

router = APIRouter(prefix="/tokens", tags=["tokens"])


class TokenCreate(Strict):
    scope: str = Field(description="admin, operator, read or agent")
    agent: str | None = Field(default=None, max_length=255, description="agent tokens: the agent's name")
    name: str | None = Field(default=None, max_length=255, description="a note: who or what uses it")


class TokenView(BaseModel):
    id: str
    scope: str
    agent: str | None
    name: str | None
    created_at: datetime
    revoked_at: datetime | None


class NewToken(TokenView):
    token: str = Field(description="shown only now; hived keeps its SHA-256 alone")


@router.post("", response_model=NewToken, status_code=201)
async def create_token(body: TokenCreate, tokens: TokenStore) -> NewToken:
    info, secret = await tokens.create(body.scope, body.agent, body.name)
    return NewToken(**info.public(), token=secret)


@router.get("", response_model=list[TokenView])
async def list_tokens(tokens: TokenStore) -> list[TokenView]:
    return [TokenView(**t.public()) for t in await tokens.list()]


@router.delete("/{ref}", response_model=TokenView)
async def revoke_token(ref: str, tokens: TokenStore) -> TokenView:
    return TokenView(**(await tokens.revoke(ref)).public())
