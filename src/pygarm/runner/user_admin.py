"""User management rules (a pygarm extension: GARM v0.1.5 has no user API; see ``docs/users.md``).

Every change goes through ``UserStore.update_user``, one transaction that emits ``user/update``. A new
password bumps the user's ``generation``, which makes ``Authenticator.authenticate`` refuse every token
issued before it, including the caller's own when they change their own password.
"""

from __future__ import annotations

import asyncio

from pygarm.errors import BadRequestError
from pygarm.params.models import User
from pygarm.params.requests import UpdateUserParams
from pygarm.runner.auth import hash_password_sync, password_is_strong
from pygarm.store.base import is_uuid
from pygarm.store.users import UserStore

MAX_FULL_NAME_LENGTH = 254
"""The ``users.full_name`` column width."""
LAST_ADMIN_MESSAGE = "cannot disable the last enabled admin user"


def check_user_id(user_id: str) -> None:
    """GARM answers an invalid UUID path parameter with 400 ``invalid request``
    (docs/garm-protocol.md#error-mapping)."""
    if not is_uuid(user_id):
        raise BadRequestError("invalid request")


async def _hash_new_password(password: str) -> str:
    """zxcvbn and bcrypt both take milliseconds to tens of them: keep them off the event loop.

    The empty password is checked here because the zxcvbn port raises IndexError on ``""``.
    """
    if not password or not await asyncio.to_thread(password_is_strong, password):
        raise BadRequestError("password is too weak")
    return await asyncio.to_thread(hash_password_sync, password)


async def _ensure_not_last_admin(store: UserStore, user_id: str) -> None:
    """Refuse to disable the only enabled admin: nobody could log in to undo it.

    The check reads before ``update_user`` writes, so two concurrent requests disabling two different
    admins could both pass; closing that gap needs the check inside the store's transaction.
    """
    users = await store.list_users()
    target = next((user for user in users if user.id == user_id), None)
    if target is None or not (target.is_admin and target.enabled):
        return
    if not any(user.is_admin and user.enabled and user.id != user_id for user in users):
        raise BadRequestError(LAST_ADMIN_MESSAGE)


async def update_user(store: UserStore, user_id: str, params: UpdateUserParams) -> User:
    """Apply ``full_name``, ``enabled`` and ``password`` (each optional) in one transaction."""
    check_user_id(user_id)
    await store.get_user(user_id)  # 404 before any validation of the body's values
    if params.full_name is not None and len(params.full_name) > MAX_FULL_NAME_LENGTH:
        raise BadRequestError(f"full_name is too long (maximum {MAX_FULL_NAME_LENGTH} characters)")
    password_hash = None if params.password is None else await _hash_new_password(params.password)
    if params.enabled is False:
        await _ensure_not_last_admin(store, user_id)
    return await store.update_user(
        user_id, full_name=params.full_name, password_hash=password_hash, enabled=params.enabled
    )


async def change_password(store: UserStore, user_id: str, password: str) -> User:
    check_user_id(user_id)
    await store.get_user(user_id)
    return await store.update_user(user_id, password_hash=await _hash_new_password(password))
