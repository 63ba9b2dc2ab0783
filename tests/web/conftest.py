from tests.api.conftest import PASSWORD, auth, client, seeded

__all__ = ["PASSWORD", "auth", "client", "seeded"]
