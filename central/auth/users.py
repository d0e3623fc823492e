"""Personal accounts: created by an administrator (the first by the CLI), never shared."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from sqlalchemy import Connection, RowMapping, select, update

from central import audit
from central.auth.passwords import burn_time, check_strength, hash_password, needs_rehash, verify_password
from central.auth.principal import ALL_TENANTS, ROLES, Principal, tenants_of
from central.config import Sessions
from central.db.schema import users
from central.identifiers import new_id

_USERNAME = re.compile(r"[a-z][a-z0-9._-]{1,63}")


class UserError(ValueError):
    """The change is refused; the message says why."""


class LoginRefused(Exception):
    """A login failed.  The message never says whether the user exists."""

    def __init__(self, message: str, retry_after_s: int = 0) -> None:
        super().__init__(message)
        self.retry_after_s = retry_after_s


@dataclass(frozen=True)
class NewPassword:
    """A password checked for strength and hashed: Argon2 takes tens of milliseconds of CPU, so
    the web pages build this before their write transaction (which on SQLite holds up every
    other writer, the agents' reports included) and hand it in."""

    hash: str

    @classmethod
    def of(cls, password: str, username: str) -> NewPassword:
        try:
            check_strength(password, username)
        except ValueError as err:
            raise UserError(str(err)) from err
        return cls(hash_password(password))


@dataclass(frozen=True)
class PasswordProof:
    """A password checked against the hash stored when it was read, outside any transaction
    (:func:`stored_hash`, then :func:`check`); it counts only while that hash is still the stored one."""

    stored: Optional[str]
    ok: bool
    rehash: Optional[str] = None


def stored_hash(conn: Connection, username: str) -> Optional[str]:
    """The password hash of ``username`` (None: no such user), to :func:`check` after the transaction."""
    stored = conn.execute(select(users.c.password_hash).where(users.c.username == username)).scalar()
    return None if stored is None else str(stored)


def check(stored: Optional[str], password: str) -> PasswordProof:
    """The Argon2 verification (and a new hash if the parameters changed), with no lock held; for no
    such user the same time is spent (no username enumeration by timing)."""
    if stored is None:
        burn_time(password)
        return PasswordProof(None, False)
    ok = verify_password(stored, password)
    return PasswordProof(stored, ok, hash_password(password) if ok and needs_rehash(stored) else None)


def _hashed(password: Union[str, NewPassword], username: str) -> str:
    return password.hash if isinstance(password, NewPassword) else NewPassword.of(password, username).hash


def principal_of(row: RowMapping, csrf: Optional[str] = None) -> Principal:
    return Principal(row["username"], row["role"], tenants_of(row["tenants"] or []), f"user:{row['username']}", csrf)


def _check(username: str, role: str, tenants: Sequence[str]) -> None:
    if not _USERNAME.fullmatch(username):
        raise UserError("a username is 2-64 of a-z 0-9 . _ - starting with a letter (one person, one account)")
    if role not in ROLES:
        raise UserError(f"role must be one of {', '.join(ROLES)}")
    if not tenants:
        raise UserError("grant at least one tenant ('*' for every tenant)")
    for tenant in tenants:
        if tenant != ALL_TENANTS and not re.fullmatch(r"[A-Za-z0-9_.:-]{1,128}", tenant):
            raise UserError(f"tenant {tenant!r}: use 1-128 of A-Z a-z 0-9 _ . : -")


def create(  # noqa: PLR0913  a person's fields as the CLI and the people page give them
    conn: Connection,
    now: datetime,
    actor: str,
    username: str,
    password: Union[str, NewPassword],
    role: str,
    tenants: Sequence[str],
    display_name: Optional[str] = None,
    source: Optional[str] = None,
) -> str:
    _check(username, role, tenants)
    password_hash = _hashed(password, username)
    if conn.execute(select(users.c.id).where(users.c.username == username)).first() is not None:
        raise UserError(f"user {username!r} exists already")
    user_id = new_id()
    conn.execute(
        users.insert().values(
            id=user_id,
            username=username,
            display_name=display_name,
            password_hash=password_hash,
            role=role,
            tenants=list(tenants),
            created_at=now,
            failed_logins=0,
        )
    )
    audit.record(conn, now, actor, "user.create", username, {"role": role, "tenants": list(tenants)}, source)
    return user_id


def change(  # noqa: PLR0913  keyword-only: each field a person may change
    conn: Connection,
    now: datetime,
    actor: str,
    username: str,
    *,
    role: Optional[str] = None,
    tenants: Optional[Sequence[str]] = None,
    password: Union[str, NewPassword, None] = None,
    disabled: Optional[bool] = None,
    source: Optional[str] = None,
) -> None:
    row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    if row is None:
        raise UserError(f"no user {username!r}")
    values: Dict[str, Any] = {}
    detail: Dict[str, Any] = {}
    if role is not None or tenants is not None:
        _check(username, role or row["role"], tenants if tenants is not None else row["tenants"])
    _keep_an_admin(conn, row, role, disabled)
    if role is not None:
        values["role"] = detail["role"] = role
    if tenants is not None:
        values["tenants"] = detail["tenants"] = list(tenants)
    if password is not None:
        values.update(password_hash=_hashed(password, username), failed_logins=0, locked_until=None)
        detail["password"] = "changed"  # noqa: S105  a note that it changed, not a password
    if disabled is not None:
        values["disabled_at"] = now if disabled else None
        detail["disabled"] = disabled
    if values:
        conn.execute(update(users).where(users.c.id == row["id"]).values(**values))
        audit.record(conn, now, actor, "user.change", username, detail, source)


def _keep_an_admin(conn: Connection, row: RowMapping, role: Optional[str], disabled: Optional[bool]) -> None:
    """Refuse to demote or disable the last enabled admin: nobody could manage accounts any more.

    The enabled admins are read FOR UPDATE, so two admins demoting each other at once on
    PostgreSQL queue and the second sees the first's change (SQLite has one writer anyway).
    """
    was_admin = row["role"] == "admin" and row["disabled_at"] is None
    stays_admin = (role or row["role"]) == "admin" and not (
        row["disabled_at"] is not None if disabled is None else disabled
    )
    if not was_admin or stays_admin:
        return
    admins = conn.execute(
        select(users.c.id).where(users.c.role == "admin", users.c.disabled_at.is_(None)).with_for_update()
    ).all()
    if not [a for a in admins if a.id != row["id"]]:
        raise UserError(
            f"{row['username']} is the last enabled admin: make another person admin first "
            "(nobody could manage accounts otherwise)"
        )


def change_own_password(
    conn: Connection, now: datetime, username: str, proof: PasswordProof, new: NewPassword, source: Optional[str] = None
) -> None:
    """A person changes their own password, proving it is them with the current one (checked by
    :func:`check` before this transaction; refused if the password changed since it was read)."""
    row = conn.execute(select(users).where(users.c.username == username).with_for_update()).mappings().first()
    if row is None or not proof.ok or proof.stored != row["password_hash"]:
        raise UserError("the current password is wrong; nothing was changed")
    wait = locked_for(row, now)  # again here: guesses sent at once all passed the check before Argon2
    if wait:
        raise UserError(locked_message(wait))
    change(conn, now, f"user:{username}", username, password=new, source=source)


def parse_tenants(text: str) -> List[str]:
    """Tenants typed into a form: separated by commas or spaces, in order, each once."""
    return list(dict.fromkeys(t for t in re.split(r"[,\s]+", text.strip()) if t))


def find(conn: Connection, username: str) -> Optional[Dict[str, Any]]:
    row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    return None if row is None else {k: v for k, v in row.items() if k != "password_hash"}


def stamp(password_hash: str) -> str:
    """What changes whenever the password does (every hash has a salt of its own), and tells
    nothing of it: a reset form carries it, so that sending the form again resets nothing."""
    return hashlib.sha256(b"tillsyn password stamp\0" + password_hash.encode()).hexdigest()[:24]


def password_stamp(conn: Connection, username: str) -> Optional[str]:
    row = conn.execute(select(users.c.password_hash).where(users.c.username == username)).first()
    return None if row is None else stamp(row.password_hash)


def list_users(conn: Connection) -> List[Dict[str, Any]]:
    rows = conn.execute(select(users).order_by(users.c.username)).mappings()
    return [{k: v for k, v in r.items() if k != "password_hash"} for r in rows]


def count(conn: Connection) -> int:
    return len(conn.execute(select(users.c.id)).all())


@dataclass(frozen=True)
class LoggedIn:
    user_id: str
    principal: Principal


def login(
    conn: Connection,
    now: datetime,
    username: str,
    password: str,
    source: Optional[str],
    proof: Optional[PasswordProof] = None,
) -> LoggedIn:
    """Check a password; every attempt is recorded in the audit trail (who, when, from where, and
    whether it worked).  A wrong password and an unknown name are refused alike; how many wrong
    logins an address may make is counted before and after this (central/auth/throttle.py).
    ``proof``: the password already checked outside the transaction (:func:`check`);
    it counts only if the stored hash is still the one it was checked against.
    """
    row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    refused = "wrong username or password"
    if row is None:
        if proof is None:
            burn_time(password)
        audit.record(conn, now, f"unknown:{username[:64]}", "login.failed", username[:160], None, source)
        raise LoginRefused(refused)
    if proof is None or proof.stored != row["password_hash"]:
        proof = check(row["password_hash"], password)
    if not proof.ok or row["disabled_at"] is not None:
        audit.record(conn, now, f"user:{username}", "login.failed", username, None, source)
        raise LoginRefused(refused)
    values: Dict[str, Any] = {"failed_logins": 0, "locked_until": None, "last_login_at": now}
    if proof.rehash is not None:
        values["password_hash"] = proof.rehash
    conn.execute(update(users).where(users.c.id == row["id"]).values(**values))
    audit.record(conn, now, f"user:{username}", "login", username, None, source)
    return LoggedIn(row["id"], principal_of(row))


def locked_for(row: RowMapping, now: datetime) -> int:
    """Seconds the account's own password page still waits after too many wrong current passwords (0: not locked)."""
    if row["locked_until"] is None or row["locked_until"] <= now:
        return 0
    return int((row["locked_until"] - now).total_seconds()) + 1


def locked_message(wait: int) -> str:
    return f"too many failed logins; try again in {wait // 60 + 1} minutes"


def _count_failure(
    conn: Connection, now: datetime, settings: Sessions, row: RowMapping, action: str, source: Optional[str]
) -> int:
    """One more wrong current password on the password page: after ``max_failed_logins`` that page
    is locked for ``lockout_minutes`` (logging in is throttled per address instead)."""
    failures = int(row["failed_logins"]) + 1
    values: Dict[str, Any] = {"failed_logins": failures}
    if failures >= settings.max_failed_logins:
        values.update(locked_until=now + timedelta(minutes=settings.lockout_minutes), failed_logins=0)
    conn.execute(update(users).where(users.c.id == row["id"]).values(**values))
    username = row["username"]
    audit.record(conn, now, f"user:{username}", action, username, {"failures": failures}, source)
    return failures


def wrong_current_password(
    conn: Connection, now: datetime, settings: Sessions, username: str, source: Optional[str]
) -> None:
    """A wrong current password on one's own password page counts like a failed login: whoever holds
    the session must not get unlimited guesses at the password."""
    row = conn.execute(select(users).where(users.c.username == username).with_for_update()).mappings().first()
    if row is not None:
        _count_failure(conn, now, settings, row, "password.change_failed", source)


def password_state(conn: Connection, username: str, now: datetime) -> Tuple[int, Optional[str]]:
    """(seconds the account is still locked, its password hash) in one read, before :func:`check`."""
    row = conn.execute(select(users).where(users.c.username == username)).mappings().first()
    return (0, None) if row is None else (locked_for(row, now), str(row["password_hash"]))


def user_id_of(conn: Connection, username: str) -> str:
    row = conn.execute(select(users.c.id).where(users.c.username == username)).first()
    if row is None:
        raise UserError(f"no user {username!r}")
    return str(row.id)
