"""voice-gateway: hands out LiveKit voice sessions."""

__version__ = "0.1.0"
