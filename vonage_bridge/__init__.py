"""vonage-bridge: OpenAI Realtime on the telephone through Vonage Voice."""

__version__ = "0.1.0"
