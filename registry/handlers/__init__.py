"""HTTP handlers: parse the request, call the store, shape the response. No error bodies here."""
