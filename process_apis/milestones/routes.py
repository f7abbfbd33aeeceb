"""/process/v1/milestones/{contract_id}/{key}/acceptance."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from app.access import Right
from app.http import Operation, endpoint, json_response, parse_body, parse_path, principal_of
from app.responses import Amount, ApiModel, amount
from app.types import Code
from process_apis.milestones.commands import AcceptanceIn
from process_apis.milestones.service import AcceptedMilestone


class MilestonePath(BaseModel):
    contract_id: uuid.UUID
    key: Code


class AcceptedMilestoneView(ApiModel):
    contract_id: uuid.UUID
    key: str
    name: str
    amount: Amount = Field(description="The amount of the version in force on the acceptance date")
    due_date: date | None
    depends_on: list[str]
    status: Literal["accepted"]
    accepted_at: datetime
    accepted_on: date = Field(description="The UTC date of accepted_at: the transaction's date")
    accepted_by: str | None
    version: int = Field(description="The contract version in force on the acceptance date")


class TransactionRef(ApiModel):
    id: uuid.UUID
    amount: Amount
    currency: str
    status: Literal["unbilled", "held", "non_billable", "invoiced", "superseded"]


class MilestoneAccepted(ApiModel):
    milestone: AcceptedMilestoneView
    status: Literal["accepted"]
    transaction: TransactionRef


def _view(a: AcceptedMilestone) -> MilestoneAccepted:
    milestone = AcceptedMilestoneView(
        contract_id=a.contract_id,
        key=a.key,
        name=a.name,
        amount=amount(a.amount, a.currency),
        due_date=a.due_date,
        depends_on=a.depends_on,
        status="accepted",
        accepted_at=a.accepted_at,
        accepted_on=a.accepted_on,
        accepted_by=a.accepted_by,
        version=a.version,
    )
    transaction = TransactionRef(
        id=a.transaction_id,
        amount=amount(a.transaction_amount, a.currency),
        currency=a.currency,
        status=a.transaction_status,  # type: ignore[arg-type]
    )
    return MilestoneAccepted(milestone=milestone, status="accepted", transaction=transaction)


async def accept_milestone(request: Request) -> Response:
    path = parse_path(request, MilestonePath)
    cmd = await parse_body(request, AcceptanceIn)
    result = await request.app.state.services.milestones.accept_milestone(
        path.contract_id, path.key, cmd, principal_of(request)
    )
    return json_response(_view(result))


routes: list[Route] = [
    endpoint(
        "/process/v1/milestones/{contract_id}/{key}/acceptance",
        "POST",
        accept_milestone,
        Operation(
            "acceptMilestone",
            "Accept a milestone: creates its billable transaction (the same acceptance again: 200, nothing new)",
            Right.ACCEPT_MILESTONES,
            path=MilestonePath,
            body=AcceptanceIn,
            response=MilestoneAccepted,
            tags=("milestones",),
            errors={
                404: ("NOT_FOUND", "UNKNOWN_MILESTONE"),
                409: ("CONTRACT_BLOCKED", "MILESTONE_NOT_IN_FORCE", "PREREQUISITES_NOT_MET", "ALREADY_ACCEPTED"),
                422: ("VALIDATION_FAILED", "OUTSIDE_CONTRACT_TERM"),
            },
        ),
    ),
]
