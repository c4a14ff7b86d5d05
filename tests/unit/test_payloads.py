"""Typed payloads: which annotations are typed, validation, and the JSON they convert to."""

from __future__ import annotations

import dataclasses
import functools
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypedDict

import pydantic
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conveyor.errors import ValidationError
from conveyor.payloads import InvalidPayload, PayloadType, handler_payload_type, payload_type
from conveyor.payloads.plain_dataclass import DataclassPayload
from conveyor.payloads.with_pydantic import PydanticPayload
from conveyor.worker.context import JobContext


class Line(pydantic.BaseModel):
    sku: str
    quantity: int = 1


class Order(pydantic.BaseModel):
    month: str
    lines: list[Line] = []
    due: datetime | None = None


@dataclass
class Address:
    city: str
    zip: str | None = None


@dataclass
class Customer:
    name: str
    age: int
    score: float = 0.0
    vip: bool = False
    tier: Literal["gold", "silver"] = "silver"
    tags: list[str] = field(default_factory=list)
    notes: dict[str, int] = field(default_factory=dict)
    address: Address | None = None
    extra: Any = None
    code: int | str = 0


@dataclass
class Node:
    label: str
    children: list[Node] = field(default_factory=list)


@dataclass
class Positive:
    value: int

    def __post_init__(self) -> None:
        if self.value <= 0:
            raise ValueError("value must be positive")


class Shape(TypedDict):
    side: int


def fields_of(exc: InvalidPayload) -> list[str]:
    return [e.field for e in exc.errors]


# --- which annotations are typed -------------------------------------------------------------


@pytest.mark.parametrize(
    "annotation", [None, Any, dict, dict[str, Any], list[int], int, str, Shape, "Order", object]
)
def test_other_annotations_are_plain_json(annotation: object) -> None:
    assert payload_type(annotation) is None


def test_pydantic_models_and_dataclasses_are_typed() -> None:
    assert isinstance(payload_type(Order), PydanticPayload)
    # pydantic is installed here, so it validates dataclasses too.
    assert isinstance(payload_type(Customer), PydanticPayload)
    assert payload_type(Order).annotation is Order  # type: ignore[union-attr]


async def model_handler(ctx: JobContext, payload: Order) -> str:
    return payload.month


def dataclass_handler(ctx: JobContext, payload: Customer) -> str:
    return payload.name


def plain_handler(ctx: JobContext, payload: dict[str, Any]) -> None:
    return None


def untyped_handler(ctx, payload):
    return payload


def bad_return_annotation(ctx: JobContext, payload: Order) -> Unknown:  # type: ignore[name-defined]  # noqa: F821
    return None


def unresolvable(ctx: JobContext, payload: Missing) -> None:  # type: ignore[name-defined]  # noqa: F821
    return None


class CallableHandler:
    def __call__(self, ctx: JobContext, payload: Order) -> None:
        return None


def test_the_payload_type_of_a_handler_comes_from_its_second_parameter() -> None:
    # This module uses `from __future__ import annotations`: they are strings to resolve.
    assert handler_payload_type(model_handler).annotation is Order  # type: ignore[union-attr]
    assert handler_payload_type(dataclass_handler).annotation is Customer  # type: ignore[union-attr]
    assert handler_payload_type(CallableHandler()).annotation is Order  # type: ignore[union-attr]
    partial = functools.partial(model_handler)
    assert handler_payload_type(partial).annotation is Order  # type: ignore[union-attr]
    assert handler_payload_type(bad_return_annotation).annotation is Order  # type: ignore[union-attr]
    for plain in (plain_handler, untyped_handler, lambda ctx, payload: None, print):
        assert handler_payload_type(plain) is None


def test_an_unresolvable_payload_annotation_is_refused() -> None:
    with pytest.raises(TypeError, match="cannot resolve the payload annotation 'Missing'"):
        handler_payload_type(unresolvable)


# --- pydantic models ---------------------------------------------------------------------------


def test_a_model_is_dumped_as_its_json() -> None:
    kind = PydanticPayload(Order)
    order = Order(month="2026-11", lines=[Line(sku="a", quantity=2)], due=datetime(2026, 12, 1))
    assert kind.dump(order) == {
        "month": "2026-11",
        "lines": [{"sku": "a", "quantity": 2}],
        "due": "2026-12-01T00:00:00",
    }
    loaded = kind.load(kind.dump(order))
    assert loaded == order


def test_an_equivalent_json_object_is_validated_and_stored_in_its_canonical_form() -> None:
    kind = PydanticPayload(Order)
    assert kind.dump({"month": "2026-11", "lines": [{"sku": "a", "quantity": "3"}]}) == {
        "month": "2026-11",
        "lines": [{"sku": "a", "quantity": 3}],
        "due": None,
    }


def test_model_errors_name_every_field() -> None:
    kind = PydanticPayload(Order)
    with pytest.raises(InvalidPayload) as caught:
        kind.dump({"lines": [{"quantity": "many"}]})
    assert fields_of(caught.value) == [
        "payload.month",
        "payload.lines.0.sku",
        "payload.lines.0.quantity",
    ]
    assert isinstance(caught.value, ValidationError)
    assert caught.value.field == "payload.month"
    assert caught.value.message == "Field required"
    assert str(caught.value).startswith("payload.month: Field required; payload.lines.0.sku")


def test_a_payload_that_is_not_an_object_is_named_as_the_payload() -> None:
    with pytest.raises(InvalidPayload) as caught:
        PydanticPayload(Order).load(42, "jobs/3/payload")
    assert fields_of(caught.value) == ["jobs/3/payload"]


def test_an_invalid_model_instance_is_refused_too() -> None:
    # model_construct skips validation: the check on enqueue is what the worker will do.
    order = Order.model_construct(month=7)
    with pytest.raises(InvalidPayload) as caught:
        PydanticPayload(Order).dump(order)
    assert fields_of(caught.value) == ["payload.month"]


def test_problems_lists_what_load_would_refuse() -> None:
    kind = PydanticPayload(Order)
    assert kind.problems({"month": "x"}) == []
    assert [e.field for e in kind.problems({}, "payload")] == ["payload.month"]


def test_pydantic_validates_dataclasses() -> None:
    kind = PydanticPayload(Customer)
    assert kind.load({"name": "Ada", "age": 36}) == Customer("Ada", 36)
    with pytest.raises(InvalidPayload) as caught:
        kind.load({"name": "Ada", "age": "old", "address": {}})
    assert fields_of(caught.value) == ["payload.age", "payload.address.city"]


# --- dataclasses without pydantic ------------------------------------------------------------


def plain(cls: type) -> PayloadType:
    return DataclassPayload(cls)


def test_a_dataclass_round_trips_through_json() -> None:
    kind = plain(Customer)
    customer = Customer(
        "Ada",
        36,
        score=1.5,
        vip=True,
        tier="gold",
        tags=["a"],
        notes={"x": 1},
        address=Address("Paris"),
        extra={"free": [1, None]},
        code="A7",
    )
    stored = kind.dump(customer)
    assert stored == dataclasses.asdict(customer)
    assert kind.load(stored) == customer


def test_defaults_fill_absent_fields_and_unknown_keys_are_ignored() -> None:
    assert plain(Customer).load({"name": "Ada", "age": 36, "other": 1}) == Customer("Ada", 36)


def test_numbers_are_converted_as_pydantic_does() -> None:
    loaded = plain(Customer).load({"name": "Ada", "age": 36.0, "score": 2})
    assert loaded == Customer("Ada", 36, score=2.0)
    assert isinstance(loaded.age, int)
    assert isinstance(loaded.score, float)


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        (42, [("payload", "must be an object")]),
        ({}, [("payload.name", "is required"), ("payload.age", "is required")]),
        (
            {"name": 1, "age": True},
            [("payload.name", "must be a string"), ("payload.age", "must be an integer")],
        ),
        ({"name": "a", "age": 1, "score": "x"}, [("payload.score", "must be a number")]),
        ({"name": "a", "age": 2.0**63}, [("payload.age", "is too large for an integer")]),
        ({"name": "a", "age": 1, "vip": 1}, [("payload.vip", "must be a boolean")]),
        (
            {"name": "a", "age": 1, "tier": "bronze"},
            [("payload.tier", "must be one of 'gold', 'silver'")],
        ),
        ({"name": "a", "age": 1, "tags": "x"}, [("payload.tags", "must be an array")]),
        ({"name": "a", "age": 1, "tags": ["x", 2]}, [("payload.tags.1", "must be a string")]),
        ({"name": "a", "age": 1, "notes": {"k": "v"}}, [("payload.notes.k", "must be an integer")]),
        (
            {"name": "a", "age": 1, "address": {"zip": 75}},
            [("payload.address.city", "is required"), ("payload.address.zip", "must be a string")],
        ),
        (
            {"name": "a", "age": 1, "code": 1.5},
            [("payload.code", "must be an integer or a string")],
        ),
        (
            {"name": "a", "age": 1, "extra": {1, 2}},
            [("payload.extra", "holds a set, which is not a JSON value")],
        ),
    ],
)
def test_dataclass_errors_name_every_bad_field(
    payload: object, errors: list[tuple[str, str]]
) -> None:
    with pytest.raises(InvalidPayload) as caught:
        plain(Customer).load(payload)
    assert [(e.field, e.message) for e in caught.value.errors] == errors


def test_optional_fields_take_null() -> None:
    loaded = plain(Customer).load({"name": "a", "age": 1, "address": {"city": "x", "zip": None}})
    assert loaded.address == Address("x", None)  # type: ignore[attr-defined]


def test_recursive_dataclasses_are_checked_at_every_level() -> None:
    kind = plain(Node)
    tree = Node("root", [Node("a", [Node("b")])])
    assert kind.load(kind.dump(tree)) == tree
    with pytest.raises(InvalidPayload) as caught:
        kind.load({"label": "root", "children": [{"label": "a", "children": [{}]}]})
    assert fields_of(caught.value) == ["payload.children.0.children.0.label"]


def test_the_dataclass_own_checks_become_payload_errors() -> None:
    with pytest.raises(InvalidPayload) as caught:
        plain(Positive).load({"value": -1})
    assert [(e.field, e.message) for e in caught.value.errors] == [
        ("payload", "value must be positive")
    ]


def test_an_instance_holding_wrong_types_is_refused_on_dump() -> None:
    with pytest.raises(InvalidPayload) as caught:
        plain(Customer).dump(Customer("Ada", "old"))  # type: ignore[arg-type]
    assert fields_of(caught.value) == ["payload.age"]


@dataclass
class WithDatetime:
    when: datetime


@dataclass
class WithTuple:
    pair: tuple[int, int]


@dataclass
class WithIntKeys:
    table: dict[int, str]


@pytest.mark.parametrize("cls", [WithDatetime, WithTuple, WithIntKeys])
def test_field_types_it_cannot_check_are_refused_up_front(cls: type) -> None:
    with pytest.raises(TypeError, match=r"install pydantic \(conveyor\[pydantic\]\)"):
        DataclassPayload(cls)


# --- without pydantic installed --------------------------------------------------------------


def test_without_pydantic_dataclass_handlers_work_and_pydantic_is_never_imported() -> None:
    code = textwrap.dedent(
        """
        import sys
        sys.modules["pydantic"] = None  # as if it were not installed: importing it fails
        from dataclasses import dataclass
        import conveyor
        from conveyor.payloads.plain_dataclass import DataclassPayload
        from conveyor.worker.registry import Registry

        @dataclass
        class Build:
            month: str

        registry = Registry()

        @registry.handler("build")
        def build(ctx: conveyor.JobContext, payload: Build) -> str:
            return payload.month

        @registry.handler("plain")
        def plain(ctx: conveyor.JobContext, payload: dict) -> None:
            return None

        assert isinstance(build.payload_type, DataclassPayload), build.payload_type
        assert plain.payload_type is None
        assert build.json_payload(Build("2026-11")) == {"month": "2026-11"}
        try:
            build.json_payload({"month": 11})
        except conveyor.ValidationError as exc:
            print(exc)
        """
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "payload.month: must be a string"


# --- the check without pydantic never accepts what pydantic refuses ----------------------------

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=5),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=5), children, max_size=3)
    ),
    max_leaves=8,
)


def mostly(valid: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value of `valid` nine times in ten, any JSON value otherwise: most payloads are
    accepted, and each field is also tried with values of every other kind."""
    return st.integers(0, 9).flatmap(lambda i: JSON if i == 0 else valid)


NUMBER = st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False, allow_infinity=False)
ADDRESS = st.fixed_dictionaries(
    {"city": mostly(st.text(max_size=5))}, optional={"zip": mostly(st.none() | st.text())}
)
CUSTOMER = st.fixed_dictionaries(
    {"name": mostly(st.text(max_size=5)), "age": mostly(NUMBER)},
    optional={
        "score": mostly(NUMBER),
        "vip": mostly(st.booleans()),
        "tier": mostly(st.sampled_from(["gold", "silver", "bronze"])),
        "tags": mostly(st.lists(st.text(max_size=3), max_size=3)),
        "notes": mostly(st.dictionaries(st.text(max_size=3), NUMBER, max_size=3)),
        "address": mostly(st.none() | ADDRESS),
        "extra": JSON,
        "code": mostly(NUMBER | st.text(max_size=3)),
        "unknown": JSON,
    },
)


@settings(max_examples=300, deadline=None)
@given(payload=CUSTOMER)
def test_what_the_plain_check_accepts_pydantic_loads_alike(payload: dict[str, Any]) -> None:
    try:
        loaded = plain(Customer).load(payload)
    except InvalidPayload:
        return
    assert PydanticPayload(Customer).load(payload) == loaded
