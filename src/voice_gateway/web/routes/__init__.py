"""HTTP handlers: thin. Parse, call the service, respond."""
