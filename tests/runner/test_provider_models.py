"""Provider protocol wire models: BootstrapInstance bytes (docs/garm-protocol.md#bootstrapinstance),
ProviderInstance decoding and validation (docs/garm-protocol.md#providerinstance), runner tools entries
(docs/garm-protocol.md#github-calls)."""

from __future__ import annotations

import pytest

from pygarm.params.provider import (
    BootstrapInstance,
    ProviderDecodeError,
    ProviderInstance,
    RunnerApplicationDownload,
    decode_provider_instance,
    decode_provider_instances,
    validate_provider_instance,
)

TOOL = RunnerApplicationDownload(
    os="linux",
    architecture="x64",
    download_url="https://x/actions-runner-linux-x64-2.317.0.tar.gz",
    filename="actions-runner-linux-x64-2.317.0.tar.gz",
    sha256_checksum="abc",
)

# docs/garm-protocol.md#bootstrapinstance (observed) JIT example, with the shortened values filled in.
SPEC_JIT_EXAMPLE = (
    b'{"name":"garm-ofvzmvXOW7iG","tools":[{"os":"linux","architecture":"x64",'
    b'"download_url":"https://x/actions-runner-linux-x64-2.317.0.tar.gz",'
    b'"filename":"actions-runner-linux-x64-2.317.0.tar.gz","sha256_checksum":"abc"}],'
    b'"repo_url":"http://127.0.0.1:18080/octo/hello",'
    b'"callback-url":"http://127.0.0.1:19997/api/v1/callbacks",'
    b'"metadata-url":"http://127.0.0.1:19997/api/v1/metadata","instance-token":"eyJ.tok",'
    b'"ssh-keys":null,"extra_specs":{"foo":"bar"},"github-runner-group":"","ca-cert-bundle":null,'
    b'"arch":"amd64","os_type":"linux","flavor":"small","image":"ubuntu:22.04","labels":null,'
    b'"pool_id":"31b2","user_data_options":{"disable_updates_on_boot":false,"extra_packages":null,'
    b'"enable_boot_debug":false},"jit_config_enabled":true}'
)


def jit_bootstrap(**changes: object) -> BootstrapInstance:
    values: dict[str, object] = {
        "name": "garm-ofvzmvXOW7iG",
        "tools": [TOOL],
        "repo_url": "http://127.0.0.1:18080/octo/hello",
        "callback_url": "http://127.0.0.1:19997/api/v1/callbacks",
        "metadata_url": "http://127.0.0.1:19997/api/v1/metadata",
        "instance_token": "eyJ.tok",
        "extra_specs": {"foo": "bar"},
        "arch": "amd64",
        "os_type": "linux",
        "flavor": "small",
        "image": "ubuntu:22.04",
        "pool_id": "31b2",
        "jit_config_enabled": True,
    }
    values.update(changes)
    return BootstrapInstance.model_validate(values)


def test_bootstrap_matches_spec_example_byte_for_byte() -> None:
    """docs/garm-protocol.md#bootstrapinstance: key order, compact encoding, ``null`` for nil slices, no
    trailing newline."""
    assert jit_bootstrap().to_json() == SPEC_JIT_EXAMPLE


def test_bootstrap_omits_extra_specs_only_when_absent() -> None:
    """docs/garm-protocol.md#bootstrapinstance row 8: omitted when the pool has none; an empty object is still
    sent."""
    assert b'"extra_specs"' not in jit_bootstrap(extra_specs=None).to_json()
    assert b'"extra_specs":{},' in jit_bootstrap(extra_specs={}).to_json()


def test_bootstrap_non_jit_labels_and_ca_bundle() -> None:
    """docs/garm-protocol.md#bootstrapinstance: non-JIT sends labels; ``ca-cert-bundle`` is base64; tools
    ``[]`` stays ``[]``."""
    body = jit_bootstrap(
        labels=["linux", "self-hosted"], jit_config_enabled=False, ca_cert_bundle=b"PEM", tools=[]
    ).to_json()
    assert b'"labels":["linux","self-hosted"],' in body
    assert b'"jit_config_enabled":false}' in body
    assert b'"ca-cert-bundle":"UEVN",' in body
    assert b'"tools":[],' in body


def test_bootstrap_escapes_html_like_go() -> None:
    """docs/garm-protocol.md#bootstrapinstance uses ``json.Marshal``, which escapes ``&``, ``<`` and ``>``."""
    assert (
        b'"repo_url":"http://h/a\\u0026b\\u003c\\u003e"' in jit_bootstrap(repo_url="http://h/a&b<>").to_json()
    )


def test_bootstrap_repr_hides_instance_token() -> None:
    assert "eyJ.tok" not in repr(jit_bootstrap())


def test_tools_entry_omits_nil_but_keeps_empty_strings() -> None:
    """go-github fields are ``*string,omitempty``: nil is dropped, ``""`` is kept."""
    entry = RunnerApplicationDownload(os="linux", temp_download_token="")
    assert entry.model_dump(mode="json") == {"os": "linux", "temp_download_token": ""}


def test_provider_instance_decodes_like_go() -> None:
    """docs/garm-protocol.md#providerinstance: keys match case-insensitively, unknown keys and nulls are
    ignored, fault is base64."""
    raw = (
        b'  {"Provider_ID":"p-1","name":"n","status":"running","extra":1,"os_name":null,'
        b'"addresses":[{"address":"10.0.0.5","TYPE":"private"}],"provider_fault":"aGk="}\n'
    )
    instance = decode_provider_instance(raw)
    assert instance.provider_id == "p-1"
    assert instance.os_name == ""
    assert instance.addresses is not None and instance.addresses[0].type == "private"
    assert instance.provider_fault == b"hi"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"", "unexpected end of JSON input"),
        (b"   \n", "unexpected end of JSON input"),
        (b"creating...", "invalid character 'c' looking for beginning of value"),
        (b'{"provider_id":"p"} trailing', "invalid character 't' after top-level value"),
        (b'{"provider_id":"p"', "unexpected end of JSON input"),
        (b'"text"', "json: cannot unmarshal string into Go value of type params.ProviderInstance"),
        (
            b'{"status":7}',
            "json: cannot unmarshal number into Go struct field ProviderInstance.status"
            " of type params.InstanceStatus",
        ),
        (
            b'{"addresses":{}}',
            "json: cannot unmarshal object into Go struct field ProviderInstance.addresses"
            " of type []params.Address",
        ),
    ],
)
def test_provider_instance_decode_errors(raw: bytes, message: str) -> None:
    """docs/garm-protocol.md#provider-execution: anything but one JSON document of the right shape is a decode
    error (Go's wording)."""
    with pytest.raises(ProviderDecodeError) as caught:
        decode_provider_instance(raw)
    assert str(caught.value) == message


def test_list_decoding_accepts_null_and_empty() -> None:
    """docs/garm-protocol.md#provider-commands: ``ListInstances`` may print ``null`` or ``[]``."""
    assert decode_provider_instances(b"null") == []
    assert decode_provider_instances(b"[]\n") == []
    with pytest.raises(ProviderDecodeError, match=r"into Go value of type \[\]params.ProviderInstance"):
        decode_provider_instances(b"{}")


@pytest.mark.parametrize(
    ("instance", "message"),
    [
        (ProviderInstance(name="n", status="running"), "missing provider ID"),
        (ProviderInstance(provider_id="p", status="running"), "missing instance name"),
        (ProviderInstance(provider_id="p", name="n"), "invalid status returned ()"),
        (
            ProviderInstance(provider_id="p", name="n", status="creating"),
            "invalid status returned (creating)",
        ),
    ],
)
def test_validation_messages(instance: ProviderInstance, message: str) -> None:
    """docs/garm-protocol.md#providerinstance: GARM's ``validateResult`` texts, checked in that order."""
    with pytest.raises(ValueError) as caught:
        validate_provider_instance(instance)
    assert str(caught.value) == message


@pytest.mark.parametrize("status", ["running", "stopped", "error", "unknown"])
def test_valid_statuses(status: str) -> None:
    validate_provider_instance(ProviderInstance(provider_id="p", name="n", status=status))
