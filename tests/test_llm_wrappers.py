"""The model-client decorators the composition root wraps every model in: the concurrency cap
and the background loader."""

from __future__ import annotations

import asyncio

import pytest

from agentcore.llm.base import ClosableLLM, LLMRequest, LLMResponse, LLMUnavailable
from agentcore.llm.fake import FunctionLLM, reply
from agentcore.llm.wrappers import ConcurrencyCappedLLM, LazyLLM
from agentcore.messages import PromptMessage, Role


def request(text: str) -> LLMRequest:
    return LLMRequest(messages=(PromptMessage(Role.USER, text),))


class GatedModel:
    """Each request waits until the test releases it; records what runs at once."""

    def __init__(self) -> None:
        self.running: list[str] = []
        self.entered: list[str] = []
        self.most_at_once = 0
        self.arrived = asyncio.Event()
        self._gates: dict[str, asyncio.Event] = {}
        self.closed = False

    async def complete(self, req: LLMRequest) -> LLMResponse:
        text = req.messages[-1].content or ""
        gate = self._gates.setdefault(text, asyncio.Event())
        self.entered.append(text)
        self.running.append(text)
        self.most_at_once = max(self.most_at_once, len(self.running))
        self.arrived.set()
        await gate.wait()
        self.running.remove(text)
        return reply(f"done {text}")

    def release(self, text: str) -> None:
        self._gates.setdefault(text, asyncio.Event()).set()

    async def until_entered(self, count: int) -> None:
        while len(self.entered) < count:
            self.arrived.clear()
            await self.arrived.wait()

    async def close(self) -> None:
        self.closed = True


async def test_the_cap_holds_requests_back_in_arrival_order() -> None:
    model = GatedModel()
    capped = ConcurrencyCappedLLM(model, 2)
    calls = [asyncio.create_task(capped.complete(request(f"r{i}"))) for i in range(5)]
    await asyncio.wait_for(model.until_entered(2), 5)
    await asyncio.sleep(0)  # one more pass of the loop: nobody else may enter
    assert model.entered == ["r0", "r1"] and model.running == ["r0", "r1"]
    model.release("r1")
    await asyncio.wait_for(model.until_entered(3), 5)
    assert model.entered == ["r0", "r1", "r2"]  # the longest-waiting goes next
    for i in (0, 2, 3, 4):
        model.release(f"r{i}")
    assert [(await c).content for c in calls] == [f"done r{i}" for i in range(5)]
    assert model.entered == [f"r{i}" for i in range(5)] and model.most_at_once == 2
    await capped.close()
    assert model.closed


async def test_a_cancelled_request_frees_its_place() -> None:
    model = GatedModel()
    capped = ConcurrencyCappedLLM(model, 1)
    first = asyncio.create_task(capped.complete(request("first")))
    await asyncio.wait_for(model.until_entered(1), 5)
    second = asyncio.create_task(capped.complete(request("second")))
    first.cancel()  # e.g. the turn hit its deadline
    await asyncio.wait_for(model.until_entered(2), 5)
    model.release("second")
    assert (await second).content == "done second"


def test_the_cap_must_allow_one_request() -> None:
    with pytest.raises(ValueError, match="at least 1"):
        ConcurrencyCappedLLM(FunctionLLM(lambda r: reply("x")), 0)


class Factory:
    """Builds the inner model when released; counts how often it was asked to."""

    def __init__(self, fail: Exception | None = None) -> None:
        self.calls = 0
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = False
        self.model = FunctionLLM(lambda r: reply("loaded"))
        self._fail = fail

    async def __call__(self) -> ClosableLLM:
        self.calls += 1
        self.started.set()
        try:
            await self.release.wait()
        except asyncio.CancelledError:
            self.cancelled = True
            raise
        if self._fail is not None:
            raise self._fail
        return self.model


async def test_the_lazy_client_loads_once_in_the_background() -> None:
    factory = Factory()
    lazy = LazyLLM(factory)
    await asyncio.sleep(0)
    assert factory.calls == 0  # nothing happens until asked
    lazy.start()
    lazy.start()
    await asyncio.wait_for(factory.started.wait(), 5)
    waiting = [asyncio.create_task(lazy.complete(request(f"q{i}"))) for i in range(3)]
    await asyncio.sleep(0)
    assert not any(w.done() for w in waiting)  # requests wait for the load
    factory.release.set()
    assert [(await w).content for w in waiting] == ["loaded"] * 3
    assert factory.calls == 1 and len(factory.model.requests) == 3
    await lazy.close()
    assert factory.model.closed


async def test_a_request_before_start_starts_the_load() -> None:
    factory = Factory()
    factory.release.set()
    lazy = LazyLLM(factory)
    assert (await asyncio.wait_for(lazy.complete(request("hi")), 5)).content == "loaded"
    assert factory.calls == 1


async def test_a_cancelled_request_does_not_cancel_the_shared_load() -> None:
    factory = Factory()
    lazy = LazyLLM(factory)
    impatient = asyncio.create_task(lazy.complete(request("a")))
    await asyncio.wait_for(factory.started.wait(), 5)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    factory.release.set()
    assert (await lazy.complete(request("b"))).content == "loaded"
    assert not factory.cancelled and factory.calls == 1


async def test_closing_before_or_during_the_load() -> None:
    never_started = Factory()
    await LazyLLM(never_started).close()
    assert never_started.calls == 0
    loading = Factory()
    lazy = LazyLLM(loading)
    lazy.start()
    await asyncio.wait_for(loading.started.wait(), 5)
    await lazy.close()
    await asyncio.sleep(0)  # one pass of the loop: the cancellation is delivered
    assert loading.cancelled


async def test_a_failed_load_is_a_model_error_for_every_request() -> None:
    factory = Factory(fail=ImportError("No module named 'openai'"))
    factory.release.set()
    lazy = LazyLLM(factory)
    for _ in range(2):
        with pytest.raises(LLMUnavailable, match=r"model client could not be built.*openai"):
            await lazy.complete(request("hi"))
    assert factory.calls == 1
    await lazy.close()  # nothing to close, and no error
