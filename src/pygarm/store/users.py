"""Users: the admin created by first-run, and the changes an admin makes to an account.

Unlike GARM v0.1.5, every user mutation emits a ``user`` event, so that a password change or a disable
can close that user's open websockets (the password ``generation`` invalidates old tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, Row, func, insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from pygarm.errors import ConflictError, NotFoundError
from pygarm.events.change import EntityType, Operation
from pygarm.params.models import User
from pygarm.store.base import StoreBase, as_utc, new_id
from pygarm.store.cache import user_key
from pygarm.store.db import WriteTx
from pygarm.store.tables import users


@dataclass(frozen=True, slots=True)
class UserCredentials:
    """What authentication needs and the wire model must never carry."""

    user: User
    password_hash: str
    generation: int


def row_to_user(row: Row[tuple[object, ...]]) -> User:
    return User(
        id=row.id,
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        email=row.email,
        username=row.username,
        full_name=row.full_name,
        enabled=row.enabled,
        is_admin=row.is_admin,
    )


def _row_to_credentials(row: Row[tuple[object, ...]]) -> UserCredentials:
    return UserCredentials(user=row_to_user(row), password_hash=row.password, generation=row.generation)


def _user_row(conn: Connection, user_id: str) -> Row[tuple[object, ...]]:
    row = conn.execute(select(users).where(users.c.id == user_id)).first()
    if row is None:
        raise NotFoundError("user not found")
    return row


class UserStore(StoreBase):
    async def has_admin_user(self) -> bool:
        def query(conn: Connection) -> bool:
            return conn.execute(select(func.count()).where(users.c.is_admin.is_(True))).scalar_one() > 0

        return await self.db.read(query)

    async def create_admin_user(
        self, *, username: str, email: str, full_name: str, password_hash: str
    ) -> User:
        """First-run: create the enabled admin and emit ``user/create``.

        Raises ConflictError when an admin exists (``already initialized``) or the name or e-mail is taken.
        """

        def create(tx: WriteTx) -> User:
            if tx.conn.execute(select(users.c.id).where(users.c.is_admin.is_(True))).first() is not None:
                raise ConflictError("already initialized")
            if tx.conn.execute(select(users.c.id).where(users.c.username_key == username.lower())).first():
                raise ConflictError("username already exists")
            if tx.conn.execute(select(users.c.id).where(users.c.email_key == email.lower())).first():
                raise ConflictError("email already exists")
            user_id = new_id()
            tx.conn.execute(
                insert(users).values(
                    id=user_id,
                    username=username,
                    username_key=username.lower(),
                    email=email,
                    email_key=email.lower(),
                    full_name=full_name,
                    password=password_hash,
                    generation=0,
                    is_admin=True,
                    enabled=True,
                    created_at=tx.now,
                    updated_at=tx.now,
                )
            )
            user = row_to_user(_user_row(tx.conn, user_id))
            tx.emit(EntityType.USER, Operation.CREATE, user)
            return user

        try:
            return await self.db.write(create)
        except IntegrityError as exc:
            raise ConflictError("username already exists") from exc

    async def get_user(self, user_id: str) -> User:
        return await self.db.read(lambda conn: row_to_user(_user_row(conn, user_id)))

    async def list_users(self) -> list[User]:
        def query(conn: Connection) -> list[User]:
            return [row_to_user(row) for row in conn.execute(select(users).order_by(users.c.created_at))]

        return await self.db.read(query)

    async def get_user_credentials(self, user_id: str) -> UserCredentials:
        """The user with its password hash and generation, for token checks (cached: see store/cache)."""
        cached = self.cache.get(user_key(user_id))
        if isinstance(cached, UserCredentials):
            return cached
        found = await self.db.read(lambda conn: _row_to_credentials(_user_row(conn, user_id)))
        self.cache.put(user_key(user_id), found)
        return found

    async def user_token_still_valid(self, user_id: str, generation: int) -> bool:
        """Whether a token of ``user_id`` issued at password ``generation`` is still acceptable."""

        def query(conn: Connection) -> bool:
            row = conn.execute(
                select(users.c.enabled, users.c.generation).where(users.c.id == user_id)
            ).first()
            return row is not None and bool(row.enabled) and row.generation == generation

        return await self.db.read(query)

    async def find_user_for_login(self, username_or_email: str) -> UserCredentials | None:
        """GARM lets the login name be the username or the e-mail (docs/garm-protocol.md#login)."""
        key = username_or_email.lower()

        def query(conn: Connection) -> UserCredentials | None:
            row = conn.execute(
                select(users).where(or_(users.c.username_key == key, users.c.email_key == key))
            ).first()
            return None if row is None else _row_to_credentials(row)

        return await self.db.read(query)

    async def update_user(
        self,
        user_id: str,
        *,
        full_name: str | None = None,
        password_hash: str | None = None,
        enabled: bool | None = None,
    ) -> User:
        """Change the given fields and emit ``user/update``; a new password bumps the generation,
        which invalidates every token issued before it."""

        def apply(tx: WriteTx) -> User:
            row = _user_row(tx.conn, user_id)
            values: dict[str, object] = {"updated_at": tx.now}
            if full_name is not None:
                values["full_name"] = full_name
            if password_hash is not None:
                values["password"] = password_hash
                values["generation"] = row.generation + 1
            if enabled is not None:
                values["enabled"] = enabled
            tx.conn.execute(update(users).where(users.c.id == user_id).values(**values))
            user = row_to_user(_user_row(tx.conn, user_id))
            tx.emit(EntityType.USER, Operation.UPDATE, user)
            return user

        try:
            return await self.db.write(apply)
        finally:
            self.cache.drop(user_key(user_id))
