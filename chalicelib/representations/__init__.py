"""Resources as clients see them: the HTTP API's response bodies (`schemas`) and the WebSocket
events that carry the same bodies (`events`). Free of Chalice, below both the API and the
handlers, which both present resources."""
