"""Routes under /api/v1/recipients: erasing one recipient's address from the tenant's data.

Erasure needs ``suppressions:write`` (or ``admin``): it is the strongest form of suppressing
an address, and whoever answers a recipient's requests holds that scope already."""

from __future__ import annotations

from fastapi import APIRouter, Request

from postroom.api.deps import CallerDep, RuntimeDep
from postroom.api.errors import error_responses
from postroom.api.scopes import needs
from postroom.erasure.schemas import ErasureReport
from postroom.erasure.service import erase_recipient, erased_label
from postroom.errors import Unprocessable
from postroom.files.addresses import Address, check_address

router = APIRouter(
    prefix="/api/v1/recipients",
    tags=["recipients"],
    dependencies=[needs("suppressions:write")],
    responses=error_responses(403),
)

# What the audit log records as the target instead of the address in the path.
WITHHELD = "[withheld]"


@router.delete("/{email}", response_model=ErasureReport, responses=error_responses(401, 422))
def erase(email: str, request: Request, rt: RuntimeDep, caller: CallerDep) -> ErasureReport:
    """Erase an address from the tenant's messages, events, webhook deliveries, file reports,
    recipient files and kept bounce mail. It stays on the suppression list as a hash only, so
    no campaign mails it again. Answers what was erased; a repeated call answers zeros."""
    request.state.audit_target = {"email": WITHHELD}
    checked = check_address(email)
    if not isinstance(checked, Address):
        raise Unprocessable(checked.detail, code="invalid_email", details={"field": "email"})
    request.state.audit_target = {"erased": erased_label(rt, caller.tenant_id, checked)}
    return erase_recipient(rt, caller.tenant_id, checked)
