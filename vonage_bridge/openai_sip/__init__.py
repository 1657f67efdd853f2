"""The OpenAI SIP connector front door: OpenAI answers the SIP call and sends us a
``realtime.call.incoming`` webhook; we accept (or reject) it over REST and steer the call on
a sideband WebSocket (events only: the audio stays between the carrier and OpenAI).

``webhook`` is pure (verification, parsing, the accept body); ``control`` and ``routes`` do the I/O.

Source: protocols.md B4-B5, field-notes.md 1.6, 1.7, 2.4.
"""
