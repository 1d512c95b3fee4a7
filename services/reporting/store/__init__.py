"""The reporting service's tables, all in the ``reporting`` schema, and its queries.

* :mod:`.tables` — the event log, the fact projections and the daily rollups.
* :mod:`.facts` — the order-tolerant upserts that turn events into facts.
* :mod:`.projector` — applies one event live: facts, then the rollup delta.
* :mod:`.queries` — the report reads.
"""

from services.reporting.store.tables import SCHEMA, inbox, metadata, outbox

__all__ = ["SCHEMA", "inbox", "metadata", "outbox"]
