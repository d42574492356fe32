"""The credentials of the test world: LiveKit's key pair and a caller's service key."""

API_KEY = "test-key"
API_SECRET = "test-secret-long-enough-for-hs256-0123456789"
# A caller's service key (VOICE_GATEWAY_API_KEYS), and the header that presents it.
SERVICE_KEY = "svc-key-for-tests-0123456789abcdef"
SERVICE_AUTH = {"Authorization": f"Bearer {SERVICE_KEY}"}
