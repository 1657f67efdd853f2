"""The browser phone front door: the operator console's "Talk to the assistant" page."""
