"""What an installing runner may ask for and report (docs/garm-protocol.md#callbacks,
docs/garm-protocol.md#metadata; ``garm@v0.1.5 runner/metadata.go`` and
``garm@v0.1.5 runner/runner.go:732-783``).

Every function takes the :class:`~pygarm.store.instances.InstanceRecord` that instance authentication
(``api/instance_auth.py``) read, so the checks below see the same row the token was accepted for.

Two groups:

* callbacks: :func:`record_status` (``POST /callbacks/status``) and :func:`record_system_info`
  (``POST /callbacks/system-info``), each one ``instance/update``;
* metadata: JIT files, the service name and systemd unit (JIT runners only), the one-shot registration
  token (non-JIT runners only) and the endpoint's CA bundle.

The JIT files and the registration token are credentials: they go into the response body and nowhere
else (no log line, no error text).
"""

from __future__ import annotations

import base64
import binascii
import logging
import re
from typing import Final

from cryptography import x509

from pygarm.errors import BadRequestError, GarmError, NotFoundError, UnauthorizedError
from pygarm.params.github_webhook import InstanceUpdateMessage, UpdateSystemInfoParams
from pygarm.params.models import CertificateBundle, Pool
from pygarm.runner.entity_github import entity_of_pool, github_client_for_entity
from pygarm.runner.github.client import OperationCounter
from pygarm.store.instances import InstanceRecord, NewStatusMessage, UpdateInstanceParams
from pygarm.store.store import Store

log = logging.getLogger(__name__)

DEFAULT_RUN_AS_USER: Final = "runner"
"""``defaults.DefaultUser`` of the provider library: the account the runner service runs as."""
FETCH_TOKEN_EVENT: Final = "fetchToken"
TOKEN_FETCHED_MESSAGE: Final = "runner registration token was retrieved"
MAX_RUNNER_STATUS_LENGTH: Final = 32
"""The ``runner_status`` column's width; GARM stores any length, pygarm answers 400 instead of failing."""
MAX_OS_FIELD_LENGTH: Final = 255
"""Width of the ``os_name``/``os_version`` columns."""

SYSTEMD_UNIT_TEMPLATE: Final = """[Unit]
Description=GitHub Actions Runner ({service_name})
After=network.target

[Service]
ExecStart=/home/{run_as_user}/actions-runner/runsvc.sh
User=runner
WorkingDirectory=/home/{run_as_user}/actions-runner
KillMode=process
KillSignal=SIGTERM
TimeoutStopSec=5min

[Install]
WantedBy=multi-user.target
"""
"""GARM v0.1.5's unit (``garm@v0.1.5 runner/metadata.go:20-34``); ``User=runner`` is hard-coded there
(docs/garm-protocol.md#metadata)."""

_HTML_ESCAPES: Final = {
    "\0": "\ufffd",
    '"': "&#34;",
    "&": "&amp;",
    "'": "&#39;",
    "+": "&#43;",
    "<": "&lt;",
    ">": "&gt;",
}
_PEM_BLOCK = re.compile(rb"-----BEGIN ([^\r\n-]*)-----\r?\n(.*?)-----END \1-----", re.DOTALL)


# --- callbacks ------------------------------------------------------------------------------------------


async def record_status(store: Store, record: InstanceRecord, message: InstanceUpdateMessage) -> None:
    """``AddInstanceStatusMessage``: append the message (``event_type:"status"``, ``info``), then set
    ``runner_status`` (verbatim, if non-empty) and ``agent_id`` (if non-null and non-zero). GARM does two
    writes and emits once; pygarm does one transaction with that one ``instance/update``, whose
    ``status_messages`` already include the new message."""
    if len(message.status) > MAX_RUNNER_STATUS_LENGTH:
        raise BadRequestError("invalid request")
    await store.update_instance(
        record.instance.name,
        UpdateInstanceParams(runner_status=message.status, agent_id=message.agent_id or 0),
        status_message=NewStatusMessage(message=message.message),
    )


async def record_system_info(store: Store, record: InstanceRecord, info: UpdateSystemInfoParams) -> None:
    """``UpdateSystemInfo``: nothing (and no event) when every field is absent or empty; otherwise one
    ``instance/update`` (an explicit ``agent_id: 0`` counts as given, as GARM's pointer does)."""
    if not info.os_name and not info.os_version and info.agent_id is None:
        return
    if len(info.os_name) > MAX_OS_FIELD_LENGTH or len(info.os_version) > MAX_OS_FIELD_LENGTH:
        raise BadRequestError("invalid request")
    await store.update_instance(
        record.instance.name,
        UpdateInstanceParams(os_name=info.os_name, os_version=info.os_version, agent_id=info.agent_id or 0),
    )


# --- metadata -------------------------------------------------------------------------------------------


def _require_jit(record: InstanceRecord) -> None:
    """JIT-only endpoints refuse other runners with 401 (docs/garm-protocol.md#metadata,
    docs/garm-protocol.md#other-scenarios (c))."""
    if not record.jit_configuration:
        raise UnauthorizedError()


def jit_file(record: InstanceRecord, file_name: str) -> bytes:
    """The decoded JIT file ``.<file_name>`` (GitHub's keys carry a leading dot,
    docs/garm-protocol.md#jit-configuration); 404 ``not found`` for a key the config does not have."""
    _require_jit(record)
    encoded = record.jit_configuration.get("." + file_name)
    if encoded is None:
        raise NotFoundError("not found")
    try:
        return base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise GarmError("invalid JIT configuration") from None


async def _pool_of(store: Store, record: InstanceRecord) -> Pool:
    return await store.get_pool(record.instance.pool_id)


def _service_name_for(pool: Pool, instance_name: str) -> str:
    """``actions.runner.<owner-repo | org | enterprise>.<instance>``
    (``garm@v0.1.5 runner/metadata.go:53-80``)."""
    if pool.repo_id:
        owner = pool.repo_name.replace("/", "-")
    elif pool.org_id:
        owner = pool.org_name
    else:
        owner = pool.enterprise_name
    return f"actions.runner.{owner}.{instance_name}"


async def service_name(store: Store, record: InstanceRecord) -> str:
    _require_jit(record)
    return _service_name_for(await _pool_of(store, record), record.instance.name)


def _html_escape(value: str) -> str:
    """What Go's ``html/template`` does to a value in text context (GARM renders the unit with it)."""
    return "".join(_HTML_ESCAPES.get(char, char) for char in value)


async def systemd_unit(store: Store, record: InstanceRecord, run_as_user: str) -> str:
    """The runner's systemd unit; ``run_as_user`` defaults to ``runner``."""
    name = await service_name(store, record)
    return SYSTEMD_UNIT_TEMPLATE.format(
        service_name=_html_escape(name), run_as_user=_html_escape(run_as_user or DEFAULT_RUN_AS_USER)
    )


async def registration_token(
    store: Store, record: InstanceRecord, counters: OperationCounter | None = None
) -> str:
    """A GitHub registration token for a runner without JIT config, once per create attempt.

    Refused (401) for a JIT runner and once ``token_fetched`` is set (a retry of the instance resets
    it). On success ``token_fetched`` becomes true with the ``fetchToken`` status message in one
    ``instance/update`` (GARM: the update's event, then the message without an event).
    """
    if record.token_fetched or record.jit_configuration:
        raise UnauthorizedError()
    if record.instance.runner_status not in ("pending", "installing"):
        raise UnauthorizedError()
    kind, entity_id = entity_of_pool(await _pool_of(store, record))
    entity = await store.get_entity(kind, entity_id)
    async with await github_client_for_entity(store, kind, entity, counters=counters) as client:
        token = (await client.create_registration_token()).token
    if not token:
        raise GarmError("github returned an empty registration token")
    await store.update_instance(
        record.instance.name,
        UpdateInstanceParams(token_fetched=True),
        status_message=NewStatusMessage(message=TOKEN_FETCHED_MESSAGE, event_type=FETCH_TOKEN_EVENT),
    )
    return token


def _pem_blocks(bundle: bytes) -> list[bytes]:
    """DER bytes of each PEM block, skipping malformed ones as Go's ``pem.Decode`` loop does."""
    blocks = []
    for match in _PEM_BLOCK.finditer(bundle):
        try:
            blocks.append(base64.b64decode(b"".join(match.group(2).split()), validate=True))
        except (binascii.Error, ValueError):
            continue
    return blocks


def _pem_encode(der: bytes) -> bytes:
    """Go's ``pem.Encode`` of a ``CERTIFICATE`` block: base64 in 64-character lines."""
    encoded = base64.b64encode(der)
    lines = [encoded[i : i + 64] for i in range(0, len(encoded), 64)]
    return b"-----BEGIN CERTIFICATE-----\n" + b"\n".join(lines) + b"\n-----END CERTIFICATE-----\n"


def certificate_bundle(ca_bundle: bytes | None) -> CertificateBundle:
    """``RootCertificateBundle`` (``garm@v0.1.5 params/params.go:676-704``): serial (decimal) → PEM; no bundle
    gives ``{"root_certificates": null}``, a bundle with a block that is not a certificate ``{}``."""
    if not ca_bundle:
        return CertificateBundle()
    certificates: dict[str, bytes] = {}
    for der in _pem_blocks(ca_bundle):
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError:
            log.warning("the endpoint's CA bundle holds a block that is not a certificate")
            return CertificateBundle(root_certificates={})
        certificates[str(certificate.serial_number)] = _pem_encode(der)
    return CertificateBundle(root_certificates=dict(sorted(certificates.items())))


async def root_certificate_bundle(store: Store, record: InstanceRecord) -> CertificateBundle:
    """The CA bundle of the instance's entity's credentials, i.e. of their GitHub endpoint (GARM v0.1.5's
    credentials carry the endpoint's bundle); any authenticated runner may ask."""
    kind, entity_id = entity_of_pool(await _pool_of(store, record))
    entity = await store.get_entity(kind, entity_id)
    return certificate_bundle(entity.credentials.ca_bundle or entity.endpoint.ca_cert_bundle)
