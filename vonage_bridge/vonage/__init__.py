"""The Vonage front door: answer/event webhooks, NCCOs, the media WebSocket, signing, REST."""
