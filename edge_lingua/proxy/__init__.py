"""OpenAI- and Anthropic-compatible compressing proxy (``edge-lingua serve``)."""

from edge_lingua.proxy.apis import mark_scope
from edge_lingua.proxy.app import BearerAuth, authorised, create_app
from edge_lingua.proxy.config import Limits, ProxyConfig
from edge_lingua.proxy.server import ProxyServer

__all__ = ["BearerAuth", "Limits", "ProxyConfig", "ProxyServer", "authorised", "create_app",
           "mark_scope"]
