"""The casework service's tables (``store.tables``) and the queries over them
(``store.referrals``, ``store.attachments``, ``store.participants``,
``store.sessions``)."""

from services.casework.store.tables import SCHEMA, inbox, metadata, outbox

__all__ = ["SCHEMA", "inbox", "metadata", "outbox"]
