from __future__ import annotations

import pathlib
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from node.api.app import make_app
from tests.api.chain import Chain, build_chain
from tests.api.fakecontrol import FakeControl
from tests.ledger.harness import CHAIN


@pytest.fixture(scope="module")
def chain(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Chain]:
    path: pathlib.Path = tmp_path_factory.mktemp("api-chain") / "db"
    built = build_chain(path)
    yield built
    built.store.close()


@pytest.fixture
def node(chain: Chain) -> FakeControl:
    return FakeControl(chain.store, CHAIN)


@pytest.fixture
async def client(node: FakeControl) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=make_app(node))
    async with httpx.AsyncClient(transport=transport, base_url="http://node") as c:
        yield c
