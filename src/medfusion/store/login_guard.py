"""Account lockout after repeated failed logins, read from the audit log itself.

OWASP Authentication Cheat Sheet (account lockout): after ``max_failures`` consecutive failed logins, the
account refuses logins for ``lockout_minutes`` from the last failure, whatever the password. The audit log
already records every attempt, so it is the single source of truth — across API workers too. An
administrator's unlock (or password reset) stamps the account's ``unlocked_at``: failures before it no longer
count, so the account may sign in at once instead of when the timer runs out.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from medfusion.store.tables import AuditRow
from medfusion.store.users import unlocked_at


def locked_until(session: Session, username: str, max_failures: int, lockout_minutes: int) -> datetime | None:
    """When the lock on ``username`` ends, or None if it may try to log in now."""
    query = (
        select(AuditRow.outcome, AuditRow.ts)
        .where(AuditRow.actor == username, AuditRow.action == "auth.login")
        .order_by(AuditRow.seq.desc())
        .limit(max_failures)
    )
    since = unlocked_at(session, username)
    if since is not None:  # entries' ``ts`` are ISO strings in UTC with microseconds: they sort as text
        query = query.where(AuditRow.ts > since.astimezone(UTC).isoformat(timespec="microseconds"))
    rows = session.execute(query).all()
    if len(rows) < max_failures or any(outcome != "denied" for outcome, _ in rows):
        return None
    until = datetime.fromisoformat(rows[0].ts) + timedelta(minutes=lockout_minutes)
    return until if until > datetime.now(UTC) else None
