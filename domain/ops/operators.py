"""Who may operate the queues, and the audit log of what operators did.

The ops plane writes these two small tables itself instead of sending commands through the `writes`
queue: an operator must be able to sign in, resume a paused `writes` queue and be audited doing so
while that queue is paused, backed up or without workers.
"""

from __future__ import annotations

import msgspec

from models import Operator, OpsAudit, User, utcnow

#: Actions the audit log records.
ACTIONS = ("retry", "retry_all", "delete", "purge", "run_now", "pause", "resume")


def is_operator(user_id: int) -> bool:
    return Operator.select().where(Operator.user == user_id).exists()


def grant(user: User) -> bool:
    """Make `user` an operator; False if they were one already."""
    if is_operator(user.id):
        return False
    Operator.insert(user=user.id, granted_at=utcnow()).on_conflict_ignore().execute()
    return True


def revoke(user: User) -> bool:
    """Take the operator mark from `user`; False if they had none."""
    return Operator.delete().where(Operator.user == user.id).execute() > 0


def listed() -> list[tuple[User, Operator]]:
    """Every operator, first granted first."""
    rows = Operator.select(Operator, User).join(User).order_by(Operator.granted_at, User.id)
    return [(row.user, row) for row in rows]


class AuditEntry(msgspec.Struct, frozen=True):
    """One operator action: who (their email), what, on which queue or job, when (RFC 3339, UTC)."""

    id: int
    at: str
    email: str
    action: str
    target: str
    detail: str


def record(user: User, action: str, target: str, detail: str = "") -> None:
    """Write the audit row of an action an operator took."""
    OpsAudit.insert(user=user.id, email=user.email or f"user {user.id}", action=action, target=target,
                    detail=detail[:2000], at=utcnow()).execute()


def audit_log(limit: int, offset: int = 0) -> tuple[list[AuditEntry], int]:
    """The latest actions first, and how many there are in all."""
    rows = OpsAudit.select().order_by(OpsAudit.at.desc(), OpsAudit.id.desc()).limit(limit).offset(offset)
    entries = [AuditEntry(row.id, row.at.isoformat(timespec="milliseconds") + "Z", row.email, row.action, row.target,
                          row.detail) for row in rows]
    return entries, OpsAudit.select().count()
