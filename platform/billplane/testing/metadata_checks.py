"""Checks of what a plugin declares and of the adapter's shape, before any operation runs."""

# ruff: noqa: S101 - pytest reports assertions, with these messages, as check failures

from __future__ import annotations

import inspect
import re

import msgspec
import pytest

from billplane.plugins import (
    AdapterContext,
    Capability,
    InvalidCredentialsError,
    ProviderAdapter,
    ProviderPlugin,
    UnsupportedOperationError,
)
from billplane.testing.capabilities import OPERATIONS, REQUIRES
from billplane.testing.samples import PRICING_MODELS

NAME = re.compile(r"^[a-z][a-z0-9_]{1,31}$")


def protocol_methods() -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for name, member in vars(ProviderAdapter).items()
        if inspect.isfunction(member) and not name.startswith("_")
    }


def _signature_problems(name: str, expected: inspect.Signature, actual: inspect.Signature) -> list[str]:
    """billplane may pass any argument by its protocol name, and positional ones by position too."""
    wanted = [p for p in expected.parameters.values() if p.name != "self"]
    have = [p for p in actual.parameters.values() if p.name != "self"]
    by_name = {p.name: p for p in have}
    problems = []
    for index, param in enumerate(wanted):
        got = by_name.get(param.name)
        if param.kind is param.POSITIONAL_OR_KEYWORD and (
            got is None or got.kind is not got.POSITIONAL_OR_KEYWORD or have.index(got) != index
        ):
            problems.append(f"{name}: argument {index + 1} must be {param.name!r} (positional or keyword)")
        elif param.kind is param.KEYWORD_ONLY and (
            got is None or got.kind not in {got.KEYWORD_ONLY, got.POSITIONAL_OR_KEYWORD}
        ):
            problems.append(f"{name}: needs the keyword argument {param.name!r}")
    known = {p.name for p in wanted}
    variadic = {inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD}
    problems += [
        f"{name}: argument {p.name!r} is required but billplane never passes it"
        for p in have
        if p.name not in known and p.kind not in variadic and p.default is p.empty
    ]
    return problems


class MetadataChecks:
    @pytest.mark.anyio
    async def test_name_is_valid(self, provider_plugin: ProviderPlugin) -> None:
        assert NAME.fullmatch(provider_plugin.name), f"provider name {provider_plugin.name!r} must match {NAME.pattern}"

    @pytest.mark.anyio
    async def test_version_and_description_are_set(self, provider_plugin: ProviderPlugin) -> None:
        assert isinstance(provider_plugin.version, str), "version must be a string"
        assert provider_plugin.version.strip(), "version must not be empty"
        assert isinstance(provider_plugin.description, str), "description must be a string"
        assert provider_plugin.description.strip(), "description must not be empty"

    @pytest.mark.anyio
    async def test_capabilities_are_known_and_consistent(self, provider_plugin: ProviderPlugin) -> None:
        declared = provider_plugin.capabilities
        assert isinstance(declared, frozenset), "capabilities must be a frozenset of Capability"
        unknown = [c for c in declared if not isinstance(c, Capability)]
        assert not unknown, f"capabilities must be Capability members, not {unknown!r}"
        for capability, needs in REQUIRES.items():
            if capability in declared:
                missing = sorted(needs - declared)
                assert not missing, f"the {capability.value} capability also needs {missing}"

    @pytest.mark.anyio
    async def test_pricing_models_are_known(self, provider_plugin: ProviderPlugin) -> None:
        models = provider_plugin.pricing_models
        unknown = sorted(set(models) - set(PRICING_MODELS))
        assert not unknown, f"unknown pricing models {unknown}; billplane's are {list(PRICING_MODELS)}"
        if Capability.CATALOG in provider_plugin.capabilities:
            assert models, "a provider with the catalog capability supports at least one pricing model"

    @pytest.mark.anyio
    async def test_credentials_type_is_a_strict_struct(self, provider_plugin: ProviderPlugin) -> None:
        schema = provider_plugin.credentials_type
        assert isinstance(schema, type), "credentials_type must be a class"
        assert issubclass(schema, msgspec.Struct), "credentials_type must be a msgspec.Struct"
        assert schema.__struct_config__.forbid_unknown_fields, (
            "credentials_type must use forbid_unknown_fields=True: a misspelt field must be refused, not ignored"
        )

    @pytest.mark.anyio
    async def test_secret_fields_exist_in_credentials(self, provider_plugin: ProviderPlugin) -> None:
        fields = set(provider_plugin.credentials_type.__struct_fields__)
        missing = sorted(set(provider_plugin.secret_fields) - fields)
        assert not missing, f"secret_fields {missing} are not fields of {provider_plugin.credentials_type.__name__}"

    @pytest.mark.anyio
    async def test_context_credentials_match_the_schema(
        self, provider_plugin: ProviderPlugin, adapter_context: AdapterContext, bad_credentials: msgspec.Struct
    ) -> None:
        schema = provider_plugin.credentials_type
        assert isinstance(adapter_context.credentials, schema), (
            f"adapter_context.credentials must be a {schema.__name__}"
        )
        assert isinstance(bad_credentials, schema), f"bad_credentials must be a {schema.__name__}"


class AdapterShapeChecks:
    @pytest.mark.anyio
    async def test_adapter_is_a_provider_adapter(self, adapter: ProviderAdapter) -> None:
        missing = [name for name in protocol_methods() if not callable(getattr(adapter, name, None))]
        assert not missing, f"the adapter lacks {missing}"
        assert isinstance(adapter, ProviderAdapter)

    @pytest.mark.anyio
    async def test_adapter_methods_match_the_protocol(self, adapter: ProviderAdapter) -> None:
        problems = []
        for name, expected in protocol_methods().items():
            method = getattr(adapter, name, None)
            if method is None:
                problems.append(f"{name} is missing")
                continue
            is_coroutine = inspect.iscoroutinefunction(method)
            if not is_coroutine:
                problems.append(f"{name} must be a coroutine function (async def)")
            problems += _signature_problems(name, expected, inspect.signature(method))
        assert not problems, "the adapter does not honour ProviderAdapter:\n  " + "\n  ".join(problems)

    @pytest.mark.anyio
    async def test_good_credentials_pass(self, adapter: ProviderAdapter) -> None:
        await adapter.check_credentials()

    @pytest.mark.anyio
    async def test_bad_credentials_are_refused(
        self, provider_plugin: ProviderPlugin, adapter_context: AdapterContext, bad_credentials: msgspec.Struct
    ) -> None:
        refused = provider_plugin.create_adapter(msgspec.structs.replace(adapter_context, credentials=bad_credentials))
        with pytest.raises(InvalidCredentialsError) as caught:
            await refused.check_credentials()
        shown = str(caught.value)
        for field in provider_plugin.secret_fields:
            secret = getattr(bad_credentials, field, None)
            assert not (isinstance(secret, str) and secret and secret in shown), (
                f"the error message shows the secret field {field!r}: messages must never contain credentials"
            )

    @pytest.mark.anyio
    async def test_undeclared_operations_are_unsupported(
        self, provider_plugin: ProviderPlugin, adapter: ProviderAdapter
    ) -> None:
        problems = []
        for name, (capability, call) in OPERATIONS.items():
            if capability in provider_plugin.capabilities:
                continue
            try:
                await call(adapter, f"conformance-unsupported-{name}")
            except UnsupportedOperationError:
                continue
            except Exception as exc:
                problems.append(f"{name} raised {type(exc).__name__}: {exc}")
            else:
                problems.append(f"{name} returned instead of raising")
        if Capability.WEBHOOKS not in provider_plugin.capabilities:
            try:
                await adapter.parse_webhook({}, b"{}")
            except UnsupportedOperationError:
                pass
            except Exception as exc:
                problems.append(f"parse_webhook raised {type(exc).__name__}: {exc}")
            else:
                problems.append("parse_webhook returned instead of raising")
        assert not problems, (
            "operations of undeclared capabilities must raise UnsupportedOperationError:\n  " + "\n  ".join(problems)
        )
