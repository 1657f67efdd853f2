"""The OpenAI SIP connector front door: OpenAI answers the SIP call and sends us a
``realtime.call.incoming`` webhook; we accept (or reject) it over REST and steer the call on
a sideband WebSocket (events only: the audio stays between the carrier and OpenAI).

``webhook`` is pure (verification, parsing, the accept body); ``control`` and ``routes`` do the I/O.

OpenAI may deliver the same webhook twice, and answers 404 to an accept once the caller has
hung up: both are expected, not errors.

Sources: https://platform.openai.com/docs/guides/realtime-sip (webhook, accept, sideband),
https://www.standardwebhooks.com (signature); openai-agents-python's ``twilio_sip`` example
(https://github.com/openai/openai-agents-python) for the retries and the 404.
"""
