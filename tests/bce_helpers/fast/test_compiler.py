"""compiler: torch.compile where it works, the same function eagerly with one warning where it
does not, the caller's own errors passed through, and inductor options this torch lacks left
out."""

import functools
import logging
import warnings

import pytest
import torch
from torch._dynamo.exc import BackendCompilerFailed

from bce_helpers.fast import compiler


def cube_plus_one(x: torch.Tensor) -> torch.Tensor:
    return x * x * x + 1


def test_compile_enabled_follows_the_environment(monkeypatch):
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")
    assert not compiler.compile_enabled()
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "1")
    assert compiler.compile_enabled()
    monkeypatch.delenv("BCE_HELPERS_COMPILE")
    assert compiler.compile_enabled()


def test_a_working_compiler_compiles_once_and_gives_the_functions_values():
    from torch._dynamo.utils import counters

    call = compiler.compiled(cube_plus_one, dynamic=True)
    before = counters["stats"]["unique_graphs"]
    for n in (3, 5, 17):
        x = torch.randn(n)
        torch.testing.assert_close(call(x), x**3 + 1)
    assert counters["stats"]["unique_graphs"] - before == 1  # one graph for every size
    assert not call.eager


def test_is_compiling_is_true_only_while_dynamo_traces():
    seen = []

    def record(x):
        seen.append(compiler.is_compiling())
        return x + 1

    assert not compiler.is_compiling()
    torch.compile(record, backend="eager")(torch.ones(2))
    assert seen == [True]


def broken_backend(fn, **options):
    def call(*args, **kwargs):
        raise BackendCompilerFailed(torch.compile, RuntimeError("no C++ compiler here"), None)

    return call


def test_a_compiler_that_fails_runs_the_function_eagerly_with_one_warning(monkeypatch):
    monkeypatch.setattr(torch, "compile", broken_backend)
    call = compiler.compiled(cube_plus_one, "the cube")
    x = torch.tensor([2.0, -1.0])
    with pytest.warns(RuntimeWarning) as record:
        torch.testing.assert_close(call(x), torch.tensor([9.0, 0.0]))
    message = str(record[0].message)
    assert message.startswith("the cube: torch.compile is not available here")
    assert "BackendCompilerFailed" in message and "no C++ compiler here" in message
    assert message.endswith("running the same formulas eagerly, correct but not fused")
    assert call.eager  # for good: no second warning, no second try
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        torch.testing.assert_close(call(x), torch.tensor([9.0, 0.0]))


def test_torch_compile_refusing_outright_falls_back_too(monkeypatch):
    def refuses(fn, **options):
        raise RuntimeError("Dynamo is not supported on this Python")

    monkeypatch.setattr(torch, "compile", refuses)
    call = compiler.compiled(cube_plus_one)
    with pytest.warns(RuntimeWarning, match="cube_plus_one: .*Dynamo is not supported"):
        assert call(torch.tensor(3.0)).item() == 28.0
    assert call(torch.tensor(4.0)).item() == 65.0 and call.eager


def test_the_callers_errors_reach_the_caller_unchanged(monkeypatch):
    out_of_memory = torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 4.00 GiB")
    calls = []

    def runs_out_of_memory_once(fn, **options):
        def call(*args, **kwargs):
            calls.append(args)
            if len(calls) == 1:
                raise out_of_memory
            return fn(*args, **kwargs)

        return call

    monkeypatch.setattr(torch, "compile", runs_out_of_memory_once)
    call = compiler.compiled(cube_plus_one)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "running eagerly" warning
        with pytest.raises(torch.OutOfMemoryError) as info:
            call(torch.tensor(1.0))
        assert info.value is out_of_memory and not call.eager
        assert call(torch.tensor(2.0)).item() == 9.0
    assert len(calls) == 2  # the second call went through the compiled function again


def test_without_the_compiler_nothing_is_compiled(monkeypatch):
    def must_not_compile(fn, **options):
        raise AssertionError("torch.compile called")

    monkeypatch.setattr(torch, "compile", must_not_compile)
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")
    call = compiler.compiled(cube_plus_one)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert call(torch.tensor(2.0)).item() == 9.0
    assert call.eager is False  # the environment, not a failure: compiling later is allowed


def test_options_go_to_torch_compile_without_those_this_torch_lacks(monkeypatch):
    given = []
    monkeypatch.setattr(torch, "compile", lambda fn, **options: given.append(options) or fn)
    options = {"cpp.enable_floating_point_contract_flag": "fast", "no_such": 1, "cpp.no_such": 2}
    call = compiler.compiled(cube_plus_one, dynamic=True, options=options)
    assert call(torch.tensor(1.0)).item() == 2.0
    assert given == [
        {"dynamic": True, "options": {"cpp.enable_floating_point_contract_flag": "fast"}}
    ]
    assert compiler.known_options({"dynamic": True}) == {"dynamic": True}


def scaled(x: torch.Tensor, scale: float = 1.0) -> torch.Tensor:
    return x * scale


def test_keyword_arguments_reach_the_function_on_every_path(monkeypatch):
    x = torch.tensor([1.0, -2.0])
    expected = torch.tensor([3.0, -6.0])
    monkeypatch.setenv("BCE_HELPERS_COMPILE", "0")  # eager by the environment
    torch.testing.assert_close(compiler.compiled(scaled)(x, scale=3.0), expected)
    monkeypatch.delenv("BCE_HELPERS_COMPILE")
    monkeypatch.setattr(torch, "compile", lambda fn, **options: fn)  # compiled
    torch.testing.assert_close(compiler.compiled(scaled)(x, scale=3.0), expected)
    monkeypatch.setattr(torch, "compile", broken_backend)  # compiling fails: the fall-back
    call = compiler.compiled(scaled)
    with pytest.warns(RuntimeWarning):
        torch.testing.assert_close(call(x, scale=3.0), expected)
    assert call.eager


def test_the_cuda_builds_warning_logger_is_quieted_before_compiling(monkeypatch):
    """A CUDA build of torch on a machine without CUDA logs a warning when inductor starts:
    the first compiling call sets that logger to errors only."""
    logger = logging.getLogger("torch.utils.cpp_extension")
    monkeypatch.setattr(logger, "level", logging.NOTSET)  # restored after the test
    monkeypatch.setattr(torch, "compile", lambda fn, **options: fn)
    compiler.compiled(cube_plus_one)(torch.tensor(1.0))
    assert logger.level == logging.ERROR


def test_a_function_without_a_name_is_called_a_function_in_the_warning(monkeypatch):
    monkeypatch.setattr(torch, "compile", broken_backend)
    call = compiler.compiled(functools.partial(scaled, scale=2.0))
    assert call.what == "a function"
    with pytest.warns(RuntimeWarning, match="^a function: torch.compile is not available"):
        assert call(torch.tensor(2.0)).item() == 4.0
    assert compiler.compiled(scaled).what == "scaled"
