"""Which resources a cleanup looks at: those carrying the ownership labels, plus the endpoints named.

The server-side ``filter`` is an optimisation, never the judge: it uses one documented form
(``labels.key="value"`` or ``labels.key:*``), every label is checked again on the client side, and
when the filtered listing finds nothing owned (or the filter is refused), an unfiltered listing of
every page, filtered locally, confirms it. A service that misreads a filter cannot turn into a
silent "nothing to clean". Endpoints are identified by location and id, so a name carrying the
project number and one carrying the project id are the same endpoint, cleaned and reported once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

from google.api_core import exceptions

from vertex_loadtest.endpoint_cleanup.api import VertexApi, describe_error
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig
from vertex_loadtest.endpoint_cleanup.plan import endpoint_key, is_owned, label_filter


def ownership_check(config: CleanupConfig) -> Callable[[Mapping[str, str]], bool]:
    """Whether a resource's labels make it a candidate (the run's; in sweep mode: any labelled run's)."""
    if config.sweep:
        extra = config.sweep_labels()
        return lambda labels: config.label_key in labels and (not extra or is_owned(labels, extra))
    ownership = config.ownership_labels()
    return lambda labels: is_owned(labels, ownership)


def server_filter(config: CleanupConfig) -> str:
    """The one-term filter sent with the listing ("" when nothing identifies the run's resources)."""
    if config.sweep:
        return label_filter({}, exists=[config.label_key])
    return label_filter(config.ownership_labels())


def list_candidates(
    api: VertexApi, list_method: Callable[..., Iterable[Any]], config: CleanupConfig, notes: list[str]
) -> list[Any]:
    """The resources ``list_method`` lists under the config's parent that pass the ownership check.

    Args:
        api: The cleanup's calls.
        list_method: ``endpoints.list_endpoints`` or ``models.list_models``.
        config: The resolved configuration.
        notes: Where to say how the listing went (the report's notes).

    Returns:
        The matching resources, as listed.
    """
    what = "model" if "model" in getattr(list_method, "__name__", "") else "endpoint"
    check = ownership_check(config)
    text = server_filter(config)
    if not text:
        return []
    try:
        found = [r for r in api.list_all(list_method, parent=config.parent, filter=text) if check(r.labels)]
    except exceptions.BadRequest as error:
        notes.append(f"the {what} filter {text!r} was refused ({describe_error(error)})")
        found = []
    if found:
        return found
    everything = api.list_all(list_method, parent=config.parent)
    found = [r for r in everything if check(r.labels)]
    notes.append(
        f"the filtered {what} listing ({text}) found nothing owned; an unfiltered listing of "
        f"{len(everything)} {what}(s), checked label by label, found {len(found)}"
    )
    return found


def discover(api: VertexApi, config: CleanupConfig, notes: list[str]) -> list[tuple[str, bool]]:
    """The endpoints to look at, each once.

    Args:
        api: The cleanup's calls.
        config: The resolved configuration.
        notes: Where to say how discovery went.

    Returns:
        ``[(endpoint name, explicitly named), ...]``; a listed name (the service's spelling) wins
        over the explicit spelling of the same endpoint.
    """
    found: dict[tuple[str, str], tuple[str, bool]] = {}
    for endpoint in list_candidates(api, api.endpoints.list_endpoints, config, notes):
        found.setdefault(endpoint_key(endpoint.name), (endpoint.name, False))
    for name in config.endpoints:
        listed = found.get(endpoint_key(name))
        found[endpoint_key(name)] = (listed[0] if listed else name, True)
    return list(found.values())
