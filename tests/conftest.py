"""Fixtures: one running Sector for the session, and accounts that sign up and log in through it."""

import pytest

from tests.api import Account
from tests.stack import Stack


@pytest.fixture(scope="session")
def stack():
    stack = Stack().start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def base_url(stack) -> str:
    return f"http://127.0.0.1:{stack.port}/v1/api"


@pytest.fixture
def make_account(base_url):
    def make(**kwargs) -> Account:
        return Account(base_url, **kwargs)
    return make


@pytest.fixture
def alice(make_account) -> Account:
    return make_account()


@pytest.fixture
def bob(make_account) -> Account:
    return make_account()


@pytest.fixture
def outsider(make_account) -> Account:
    return make_account()


@pytest.fixture(scope="session")
def app():
    """The Sanic app as the server builds it, to read its route table (Sanic allows one per name)."""
    from app import create_app

    return create_app()


@pytest.fixture(scope="session")
def rosetta_url(stack) -> str:
    return f"http://127.0.0.1:{stack.port}/api/v1"


@pytest.fixture(scope="session")
def origin_url(stack) -> str:
    return f"http://127.0.0.1:{stack.port}"


@pytest.fixture(scope="session")
def database(stack):
    """The stack's database, opened in the test process to look at what was stored."""
    import models

    models.open_database(stack.settings.database_url)
    yield models
    models.db.close()


@pytest.fixture
def app_user(rosetta_url):
    from tests.rosetta import AppUser

    return AppUser(rosetta_url)


@pytest.fixture(scope="module")
def provider():
    """A local OAuth2 provider speaking Google's and GitHub's protocol (tests/oauth_provider.py)."""
    from tests.oauth_provider import FakeProvider

    fake = FakeProvider().start()
    yield fake
    fake.stop()


@pytest.fixture(scope="module")
def libre_engine():
    """A local translation engine speaking LibreTranslate's API (tests/engines.py), for a module's own stack."""
    from tests.engines import FakeLibreTranslate

    fake = FakeLibreTranslate().start()
    yield fake
    fake.stop()


# RosettaChat users of one module's workspaces (tests/chat.py's crew_of makes one of them).
@pytest.fixture(scope="module")
def owner(rosetta_url):
    from tests.rosetta import AppUser

    return AppUser(rosetta_url, name="Olivia Owner")


@pytest.fixture(scope="module")
def admin(rosetta_url):
    from tests.rosetta import AppUser

    return AppUser(rosetta_url, name="Adam Admin")


@pytest.fixture(scope="module")
def member(rosetta_url):
    from tests.rosetta import AppUser

    return AppUser(rosetta_url, name="Mia Member")
