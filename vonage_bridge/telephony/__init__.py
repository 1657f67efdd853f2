"""Pure wire formats of the telephony front doors: no sockets, no REST."""
