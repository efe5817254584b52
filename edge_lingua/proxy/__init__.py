"""OpenAI-compatible compressing proxy (``edge-lingua serve``)."""

from edge_lingua.proxy.server import ProxyConfig, ProxyServer, mark_scope

__all__ = ["ProxyConfig", "ProxyServer", "mark_scope"]
