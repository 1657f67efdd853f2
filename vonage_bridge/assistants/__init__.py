"""Assistants: named configurations answering calls, stored in the call-record database.

- ``core.assistant``: the :class:`~..core.assistant.Assistant` model (the API's JSON shape),
  :class:`~..core.assistant.CallContext` (one call's assistant, extra instructions and
  variables) and how they become the call's instructions and Realtime session;
- :mod:`.store`: the ``assistants`` and ``assistant_numbers`` tables;
- :mod:`.book`: :class:`~.book.Assistants`, which assistant answers a call (``resolve``);
- :mod:`.routes`: ``GET /assistants``, ``GET/PUT/DELETE /assistants/{name}``;
- :mod:`.startup`: the database opened beside the call store and ``ASSISTANTS_FILE`` upserted.
"""
