"""The HTTP API: thin routers that parse a request, call one function and shape a response."""
