"""Edge-to-cloud cascade: answer on the device when it can, else send a compressed prompt up.

Nothing here imports llama-cpp-python until a :class:`LocalModel` is built.
"""

from edge_lingua.cascade.breaker import CircuitBreaker
from edge_lingua.cascade.core import Cascade, CascadeResult, Drainer
from edge_lingua.cascade.ledger import Entry, Ledger, PriceTable
from edge_lingua.cascade.local import LocalModel
from edge_lingua.cascade.policy import LocalAnswer, Policy
from edge_lingua.cascade.prompt import compressible, tokenizer_counter
from edge_lingua.cascade.queue import DeferredQueue
from edge_lingua.cascade.redaction import Redactor
from edge_lingua.cascade.remote import RemoteClient, RetryPolicy

__all__ = [
    "Cascade",
    "CascadeResult",
    "CircuitBreaker",
    "DeferredQueue",
    "Drainer",
    "Entry",
    "Ledger",
    "LocalAnswer",
    "LocalModel",
    "Policy",
    "PriceTable",
    "Redactor",
    "RemoteClient",
    "RetryPolicy",
    "compressible",
    "tokenizer_counter",
]
