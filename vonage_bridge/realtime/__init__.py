"""OpenAI Realtime API (GA): pure protocol and session building, plus the socket opener."""
