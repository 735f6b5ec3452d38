"""Which endpoints a cleanup looks at: those listed by the ownership labels, plus the ones named."""

from __future__ import annotations

from vertex_loadtest.endpoint_cleanup.api import VertexApi
from vertex_loadtest.endpoint_cleanup.config import CleanupConfig
from vertex_loadtest.endpoint_cleanup.plan import label_filter


def discover(api: VertexApi, config: CleanupConfig) -> list[tuple[str, bool]]:
    """The endpoints to look at, each once.

    Args:
        api: The cleanup's calls.
        config: The resolved configuration.

    Returns:
        ``[(endpoint name, explicitly named), ...]``.
    """
    found: dict[str, bool] = {}
    if config.sweep:
        text = label_filter(config.sweep_labels(), exists=[config.label_key])
    else:
        text = label_filter(config.ownership_labels())
    if text:
        pager = api.call(api.endpoints.list_endpoints, request={"parent": config.parent, "filter": text})
        for endpoint in pager:
            found.setdefault(endpoint.name, False)
    for name in config.endpoints:
        found[name] = True
    return list(found.items())
