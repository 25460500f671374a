"""Webhooks: a shop's endpoints receive the events of its chats over HTTP, signed as the
Standard Webhooks scheme says (`signing`), sent only to public addresses unless allowed
(`destinations`), at least once and in log order from a cursor kept in the store
(`delivery`)."""
