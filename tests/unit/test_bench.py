"""The bench's own arithmetic and output (`make bench` is not part of `make test`, so these keep
its code from rotting): the cost model on fixed inputs, DynamoDB's billing rules, the table and
the results file."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pytest

from bench import cost, firings
from bench.coldstart import _top_level
from bench.hooks import Webhook, attempt_of
from bench.report import (
    RESULTS_FILE,
    Figure,
    SuiteResult,
    Target,
    problems,
    read_results,
    render_table,
    results_json,
    write_results,
)
from bench.units import Call, Meter, Written, attribute_value_size, item_size, written

MEMORY = {"api_handler": 512, "fire": 256, "on_change": 512}


def http_request() -> cost.Sample:
    # 10 ms of our code x 1769/512 + 2 calls x 5 ms = 44.55 -> 45 billed ms at 512 MB.
    return cost.Sample(
        http=True,
        invocations=(cost.Invocation("api_handler", code_ms=10.0, dynamodb_calls=2),),
        read_units=1.0,
        write_units=2.0,
    )


def firing() -> cost.Sample:
    # 4 ms x 1769/256 + 2 x 5 ms = 37.64 -> 38 billed ms at 256 MB; no state machine.
    return cost.Sample(
        http=False,
        invocations=(cost.Invocation("fire", code_ms=4.0, dynamodb_calls=2),),
        read_units=0.0,
        write_units=0.0,
        scheduler_invocations=1,
    )


def retried_firing() -> cost.Sample:
    # fire hands the run over (one StartExecution: 4 x 1769/256 + 2 x 5 + 25 = 62.64 -> 63 ms).
    return cost.Sample(
        http=False,
        invocations=(cost.Invocation("fire", code_ms=4.0, dynamodb_calls=2, aws_calls=1),),
        read_units=0.0,
        write_units=0.0,
        scheduler_invocations=1,
        state_machine_executions=1,
    )


class TestCostModel:
    def test_billed_duration_scales_cpu_with_memory_and_adds_round_trips(self) -> None:
        assert cost.billed_ms(cost.Invocation("api_handler", 10.0, 2), 512) == 45
        assert cost.billed_ms(cost.Invocation("fire", 4.0, 2), 256) == 38
        assert cost.billed_ms(cost.Invocation("fire", 4.0, 2, aws_calls=1), 256) == 63
        # At a full vCPU and above, our time counts as measured.
        assert cost.billed_ms(cost.Invocation("x", 10.0, 0), 3008) == 10

    def test_one_http_request(self) -> None:
        one = cost.cost_of(http_request(), MEMORY)
        assert one.lambda_compute == pytest.approx(0.045 * 0.5 * 0.0000166667)
        assert one.lambda_requests == pytest.approx(0.20e-6)
        assert one.api_gateway == pytest.approx(3.50e-6)
        assert one.waf == pytest.approx(0.60e-6)
        assert one.dynamodb == pytest.approx(1 * 0.125e-6 + 2 * 0.625e-6)
        assert one.step_functions == 0
        assert one.total == pytest.approx(6.05000075e-6)

    def test_a_million_of_a_fixed_mix(self) -> None:
        samples = {"read": [http_request()], "fire": [firing()]}
        total = cost.cost_per_million(samples, {"read": 0.5, "fire": 0.5}, MEMORY)
        # Worked out by hand: a firing is 0.038 s x 0.25 GB x 0.0000166667 + 0.2e-6 (Lambda)
        # + 1e-6 (the scheduler) = 1.35833365e-6; 0.5e6 x 6.05000075e-6 + 0.5e6 x that.
        assert total.total == pytest.approx(3.7041672, rel=1e-9)
        assert total.step_functions == 0
        assert total.scheduler == pytest.approx(0.5)
        assert total.api_gateway == pytest.approx(1.75)
        assert total.waf == pytest.approx(0.30)
        assert total.lambda_ms == pytest.approx(0.5 * 45 + 0.5 * 38)
        assert sum(total.parts.values()) == pytest.approx(total.total)

    def test_a_retried_firing_pays_for_its_transitions(self) -> None:
        samples = cost.with_transitions({"retried": [retried_firing()]}, 15)
        one = cost.cost_of(samples["retried"][0], MEMORY)
        assert one.step_functions == pytest.approx(15 * 0.025e-3)  # $375 per million
        assert one.lambda_ms == 63

    def test_samples_of_a_kind_are_averaged(self) -> None:
        cheap = http_request()
        dear = cost.Sample(True, cheap.invocations, 3.0, 2.0)
        total = cost.cost_per_million({"read": [cheap, dear]}, {"read": 1.0}, MEMORY)
        single = cost.cost_per_million(
            {"read": [cost.Sample(True, cheap.invocations, 2.0, 2.0)]}, {"read": 1.0}, MEMORY
        )
        assert total.total == pytest.approx(single.total)

    def test_the_mix_must_add_up_and_be_measured(self) -> None:
        with pytest.raises(ValueError, match="add up"):
            cost.cost_per_million({"read": [http_request()]}, {"read": 0.9}, MEMORY)
        with pytest.raises(ValueError, match="no sample"):
            cost.cost_per_million({}, {"read": 1.0}, MEMORY)

    def test_the_default_mix_adds_up(self) -> None:
        assert sum(cost.MIX.values()) == pytest.approx(1.0)

    def test_memory_comes_from_the_chalice_config(self) -> None:
        memory = cost.memory_mb()
        assert memory["api_handler"] == 512
        assert memory["fire"] == 256  # not listed: the config's default

    def test_transitions_are_set_on_runs_handed_to_the_state_machine_only(self) -> None:
        samples = cost.with_transitions(
            {"read": [http_request()], "fire": [firing()], "retried": [retried_firing()]}, 15
        )
        assert samples["retried"][0].transitions == 15
        # A firing whose first attempt succeeded started no state machine execution.
        assert samples["fire"][0].transitions == 0
        assert samples["read"][0].transitions == 0

    def test_the_static_transitions_are_the_definitions_path_with_2_retries(self) -> None:
        from chalicelib import runs

        states = runs.definition("plan", "run_step")["States"]
        inner = states["RunSteps"]["ItemProcessor"]["States"]
        path = ["Start", "Delay", "Plan", "DoneOrRun", "RunSteps"]
        path += ["Attempt", "AgainOrDone", "Backoff", "NextAttempt"]  # attempt 2: retry
        path += ["Attempt", "AgainOrDone", "StepDone"]  # attempt 3: succeeded
        path += ["Plan", "DoneOrRun", "Finished"]
        assert all(state in states or state in inner for state in path)
        assert states["Start"]["Choices"][0]["Next"] == "Delay"
        assert inner["Backoff"]["Next"] == "NextAttempt"
        assert inner["NextAttempt"]["Next"] == "Attempt"
        assert len(path) == cost.STATIC_TRANSITIONS_2_RETRIES

    def test_samples_survive_json(self) -> None:
        samples = {"read": [http_request()], "fire": [firing()], "retried": [retried_firing()]}
        again = cost.samples_from_json(json.loads(json.dumps(cost.samples_to_json(samples))))
        assert again == samples

    def test_figures_carry_units(self) -> None:
        samples = {name: [firing() if "firing" in name else http_request()] for name in cost.MIX}
        figures = cost.figures(samples)
        assert {f.unit for f in figures} == {"USD", "ms", "RRU", "WRU"}
        total = next(f for f in figures if f.key == "cost.total_usd")
        assert total.value == pytest.approx(cost.cost_per_million(samples).total)

    def test_the_retried_firing_is_reported_beside_the_mix(self) -> None:
        samples = {name: [firing() if "firing" in name else http_request()] for name in cost.MIX}
        samples["scheduled firing, 2 retries"] = [retried_firing()]
        figures = {f.key: f for f in cost.figures(cost.with_transitions(samples, 15))}
        # Not part of the mix's shares: the total is the mix's alone.
        assert figures["cost.total_usd"].value == pytest.approx(
            cost.cost_per_million(samples).total
        )
        assert figures["cost.step_functions_usd"].value == 0
        retried = figures["cost.kind.scheduled_firing_2_retries"]
        assert "not in the mix" in retried.label
        one = cost.with_transitions(samples, 15)["scheduled firing, 2 retries"][0]
        assert retried.value == pytest.approx(cost.cost_of(one, cost.memory_mb()).total * 1e6)
        firing_figure = figures["cost.kind.scheduled_firing"]
        assert firing_figure.target == Target("<=", 10)
        assert firing_figure.passed


class _Lookup:
    """Stands in for the DynamoDB client the meter reads item sizes and indexes with."""

    def __init__(self, stored: dict[str, Any] | None = None) -> None:
        self.stored = stored

    def get_item(self, **_: Any) -> dict[str, Any]:
        return {"Item": self.stored} if self.stored else {}

    def describe_table(self, TableName: str) -> dict[str, Any]:
        return {
            "Table": {
                "KeySchema": [{"AttributeName": "id", "KeyType": "HASH"}],
                "GlobalSecondaryIndexes": [
                    {
                        "KeySchema": [{"AttributeName": "project_id", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "ALL"},
                    },
                    {
                        "KeySchema": [{"AttributeName": "assignee_id", "KeyType": "HASH"}],
                        "Projection": {"ProjectionType": "KEYS_ONLY"},
                    },
                ],
            }
        }


class _Events:
    def register(self, *_: Any) -> None:
        pass

    def unregister(self, *_: Any) -> None:
        pass


class _Client:
    class meta:
        events = _Events()


def meter(stored: dict[str, Any] | None = None) -> Meter:
    return Meter(_Client(), _Lookup(stored))


def text(size: int) -> dict[str, str]:
    return {"S": "x" * size}


class TestRequestUnits:
    def test_item_size_is_names_plus_values(self) -> None:
        assert attribute_value_size({"S": "héllo"}) == 6
        assert attribute_value_size({"N": "12345"}) == 4
        assert attribute_value_size({"BOOL": True}) == 1
        assert attribute_value_size({"L": [{"S": "ab"}, {"N": "1"}]}) == 3 + (1 + 2) + (1 + 2)
        assert item_size({"id": {"S": "abc"}, "n": {"N": "7"}}) == (2 + 3) + (1 + 2)

    def test_reads(self) -> None:
        small, large = {"id": text(100)}, {"id": text(5000)}
        usage = meter().usage(
            [
                Call("GetItem", {"ConsistentRead": True}, {"Item": large}),  # 2 x 4 KB
                Call("GetItem", {}, {}),  # missing: still half a unit
                Call(
                    "BatchGetItem",
                    {"RequestItems": {"t": {"Keys": [{}, {}, {}]}}},
                    {"Responses": {"t": [small, large]}},  # 0.5 + 1 + missing 0.5
                ),
                Call("Query", {}, {"Items": [small] * 3, "ScannedCount": 30}),
                Call("TransactGetItems", {}, {"Responses": [{"Item": small}]}),  # x2
            ]
        )
        query = math.ceil(item_size(small) * 30 / 4096) * 0.5
        assert usage.rru == pytest.approx(2 + 0.5 + 2 + query + 2)
        assert usage.calls == 5
        assert usage.operations["GetItem"] == 2

    def test_writes_count_the_indexes_the_item_is_in(self) -> None:
        item = {"id": text(10), "project_id": text(10), "body": text(1500)}  # 2 KB
        usage = meter().usage([Call("PutItem", {"TableName": "t", "Item": item})])
        # 2 for the table, 2 for the ALL index it is in; not in the assignee index.
        assert usage.wru == 4
        assigned = {**item, "assignee_id": text(5)}
        usage = meter().usage([Call("PutItem", {"TableName": "t", "Item": assigned})])
        assert usage.wru == 2 + 2 + 1  # and 1 for the keys-only index

    def test_updates_are_charged_on_the_item_after_the_write(self) -> None:
        stored = {"id": text(10), "body": text(3000)}
        usage = meter(stored).usage([Call("UpdateItem", {"TableName": "t", "Key": {}})])
        assert usage.wru == 3

    def test_a_write_is_charged_on_the_larger_of_the_item_before_and_after(self) -> None:
        before = {"id": text(10), "body": text(3000)}
        smaller = {"id": text(10), "body": text(10)}
        put = Call("PutItem", {"TableName": "t", "Item": smaller}, before=[before])
        assert meter().usage([put]).wru == 3

    def test_leaving_a_sparse_index_costs_the_index_a_delete(self) -> None:
        # An execution's lease ends: the keys-only index's attribute is removed.
        leased = {"id": text(10), "assignee_id": text(5), "body": text(100)}
        released = {"id": text(10), "body": text(100)}
        put = Call("PutItem", {"TableName": "t", "Item": released}, before=[leased])
        assert meter().usage([put]).wru == 1 + 1
        update = Call("UpdateItem", {"TableName": "t", "Key": {}}, before=[leased])
        assert meter(released).usage([update]).wru == 1 + 1

    def test_an_index_whose_keys_and_projection_are_unchanged_is_not_written(self) -> None:
        old = {"id": text(10), "assignee_id": text(5), "body": text(100)}
        new = {**old, "body": text(200)}
        put = Call("PutItem", {"TableName": "t", "Item": new}, before=[old])
        assert meter().usage([put]).wru == 1  # the keys-only index: same keys, same entry

    def test_a_changed_index_key_costs_a_delete_and_a_put(self) -> None:
        old = {"id": text(10), "project_id": text(10), "body": text(100)}
        moved = {**old, "project_id": text(11)}
        put = Call("PutItem", {"TableName": "t", "Item": moved}, before=[old])
        assert meter().usage([put]).wru == 1 + 2  # the ALL index: delete and put
        same_keys = {**old, "body": text(101)}
        put = Call("PutItem", {"TableName": "t", "Item": same_keys}, before=[old])
        assert meter().usage([put]).wru == 1 + 1  # the ALL index: its entry changed

    def test_a_delete_is_charged_on_the_item_and_its_index_entries(self) -> None:
        stored = {"id": text(10), "project_id": text(10), "body": text(1500)}
        delete = Call("DeleteItem", {"TableName": "t", "Key": {}}, before=[stored])
        assert meter().usage([delete]).wru == 2 + 2
        assert meter().usage([Call("DeleteItem", {"TableName": "t", "Key": {}})]).wru == 1

    def test_a_failed_condition_is_charged_the_table_units_only(self) -> None:
        stored = {"id": text(10), "project_id": text(10)}
        put = Call(
            "PutItem",
            {"TableName": "t", "Item": {**stored, "assignee_id": text(1)}},
            parsed={"Error": {"Code": "ConditionalCheckFailedException"}},
            before=[stored],
        )
        assert meter().usage([put]).wru == 1

    def test_the_item_before_a_write_is_read_when_it_is_called(self) -> None:
        stored = {"id": text(10), "assignee_id": text(5)}
        watched = meter(stored)

        class Model:
            name = "TransactWriteItems"

        params = {
            "TransactItems": [
                {"Put": {"TableName": "t", "Item": {"id": text(10)}}},
                {"Update": {"TableName": "t", "Key": {"id": text(10)}}},
            ]
        }
        with watched.recording() as calls:
            watched._before(params, Model())
            watched._after({}, Model())
        assert [entry.action for entry in written(calls[0])] == ["put", "update"]
        assert calls[0].before == [stored, stored]
        assert written(Call("Query", {})) == []
        assert written(Call("DeleteItem", {"TableName": "t", "Key": {"id": text(1)}})) == [
            Written("t", "delete", {"id": text(1)})
        ]

    def test_transactions_cost_double(self) -> None:
        put = {"Put": {"TableName": "t", "Item": {"id": text(10)}}}
        check = {"ConditionCheck": {"TableName": "t", "Key": {}}}
        usage = meter({"id": text(10)}).usage(
            [Call("TransactWriteItems", {"TransactItems": [put, check]})]
        )
        assert usage.wru == 2 + 2

    def test_a_transaction_doubles_the_table_units_not_the_index_writes(self) -> None:
        # The item enters the ALL index (project_id) and the KEYS_ONLY one (assignee_id).
        item = {"id": text(10), "project_id": text(10), "assignee_id": text(10)}
        put = {"Put": {"TableName": "t", "Item": item}}
        single = meter().usage([Call("PutItem", {"TableName": "t", "Item": item})])
        transacted = meter().usage([Call("TransactWriteItems", {"TransactItems": [put]})])
        assert single.wru == 1 + 2
        assert transacted.wru == 2 + 2


class TestFiringsBench:
    def test_percentiles(self) -> None:
        values = [float(n) for n in range(1, 101)]
        assert firings.percentile(values, 0.5) == 50
        assert firings.percentile(values, 0.99) == 99
        assert math.isnan(firings.percentile([], 0.5))

    def test_each_firing_is_delivered_twice_at_once_then_once_later(self) -> None:
        events: list[dict[str, Any]] = [{"n": n} for n in range(3)]
        plan = firings.DeliveryPlan(events)
        taken = []
        while (next_one := plan.take()) is not None:
            event, which, barrier = next_one
            taken.append((event["n"], which))
            assert (barrier is not None) == (which in (1, 2))
        assert sorted(taken) == [(n, which) for n in range(3) for which in (1, 2, 3)]
        # A pair is taken one after the other, its two callers meet at one barrier.
        for n in range(3):
            assert taken.index((n, 2)) == taken.index((n, 1)) + 1
            assert taken.index((n, 3)) > taken.index((n, 2))

    def test_the_pair_shares_a_barrier_of_two(self) -> None:
        plan = firings.DeliveryPlan([{"n": 0}])
        first, second = plan.take(), plan.take()
        assert first is not None
        assert second is not None
        barrier = first[2]
        assert barrier is not None
        assert second[2] is barrier
        assert barrier.parties == 2

    def test_cpu_is_told_apart_by_thread(self) -> None:
        before = {1: ("lambda-deliveries-fire-0", 1.0), 2: ("request:ThreadedWSGIServer", 0.5)}
        after = {1: ("lambda-deliveries-fire-0", 1.5), 3: ("scheduler-delivery_0", 0.25)}
        ended = {2: ("request:ThreadedWSGIServer", 0.75), 4: ("request:ThreadedWSGIServer", 0.5)}
        spent = firings.cpu_by_kind(before, after, 2.0, ended)
        assert spent[firings.thread_kind("lambda-deliveries-fire-0")] == 0.5
        assert spent[firings.thread_kind("request:ThreadedWSGIServer")] == 0.75
        assert spent[firings.thread_kind("scheduler-delivery_0")] == 0.25
        assert spent["threads that ended meanwhile"] == 0.5
        assert firings.thread_kind("webhook") != firings.thread_kind("request:_ApiServer")


class TestWebhook:
    def test_it_fails_the_attempts_it_is_told_to_and_counts_first_attempts(self) -> None:
        import urllib.error
        import urllib.request

        hook = Webhook()
        hook.fail_attempts("/flaky", 3)
        try:

            def post(path: str, delivery: str) -> int:
                request = urllib.request.Request(
                    hook.url + path, b"{}", {"X-Taskbeat-Delivery": delivery}, method="POST"
                )
                try:
                    with urllib.request.urlopen(request, timeout=5) as response:
                        return int(response.status)
                except urllib.error.HTTPError as error:
                    return int(error.code)

            assert [post("/flaky", f"EX-{n}") for n in (1, 2, 3)] == [500, 500, 204]
            assert post("/ok", "EY-1") == 204
            assert post("/ok", "EY-1") == 204
        finally:
            hook.close()
        assert hook.requests == 5
        assert hook.first_attempts() == {"EX": 1, "EY": 2}
        assert set(hook.arrived) == {"/flaky", "/ok"}
        assert attempt_of("01ABC-12") == 12
        assert attempt_of("none") == 0


def figures() -> list[Figure]:
    return [
        Figure("a.ms", "fast thing", 12.5, "ms", Target("<=", 20), "group one"),
        Figure("a.size", "size", 6.02, "MB", Target("<=", 10), "group one"),
        Figure("b.count", "slow thing", 300, "ms", Target("<=", 250), "group two"),
        Figure("b.info", "no target", float("nan"), "x", None, "group two"),
    ]


class TestReport:
    def test_the_table_has_one_row_per_figure_and_a_verdict_where_there_is_a_target(
        self,
    ) -> None:
        table = render_table(figures())
        lines = table.splitlines()
        assert lines[0].split() == ["figure", "value", "unit", "target", "result"]
        assert "[group one]" in lines
        assert "[group two]" in lines
        row = next(line for line in lines if line.startswith("slow thing"))
        assert row.split()[-1] == "FAIL"
        assert next(line for line in lines if line.startswith("fast thing")).endswith("pass")
        assert next(line for line in lines if line.startswith("no target")).split()[-1] == "x"

    def test_results_have_a_value_and_unit_for_every_key(self, tmp_path: Path) -> None:
        path = write_results(figures(), tmp_path / "latest.json")
        body = json.loads(path.read_text())
        assert set(body) == {"a.ms", "a.size", "b.count", "b.info"}
        assert problems(body) == []
        assert body["b.count"] == {
            "value": 300,
            "unit": "ms",
            "label": "slow thing",
            "group": "group two",
            "target": {"op": "<=", "value": 250},
            "pass": False,
        }
        assert body["b.info"]["value"] is None  # NaN is not JSON
        assert [f.key for f in read_results(path)] == sorted(body)

    def test_problems_are_found(self) -> None:
        assert problems({"a": {"value": 1}, "b": {"value": "x", "unit": "ms"}}) == [
            "a: no unit",
            "b: no numeric value",
        ]

    def test_a_figure_key_appears_once(self) -> None:
        with pytest.raises(ValueError, match="twice"):
            results_json([*figures(), figures()[0]])

    def test_suite_results_survive_json(self) -> None:
        result = SuiteResult(figures()[:3], {"samples": [1, 2]})
        again = SuiteResult.from_json(json.loads(json.dumps(result.to_json())))
        assert again.figures == result.figures
        assert again.data == result.data

    def test_the_committed_results_are_sound(self) -> None:
        body = json.loads(RESULTS_FILE.read_text())
        assert len(body) > 50
        assert problems(body) == []
        for prefix in ("coldstart.", "package.", "warm.", "list.", "cost.", "throughput."):
            assert any(key.startswith(prefix) for key in body), prefix

    def test_the_committed_results_measure_the_fast_path(self) -> None:
        body = json.loads(RESULTS_FILE.read_text())
        targets = {
            "cost.kind.scheduled_firing": {"op": "<=", "value": 10},
            "firings.state_machine_executions_per_1000": {"op": "==", "value": 0},
            "firings.delivery_to_webhook_p50_ms": {"op": "<=", "value": 50},
            "firings.lateness_p99_ms": {"op": "<=", "value": 1000},
            "firings.executions_per_firing": {"op": "==", "value": 1},
            "firings.first_attempt_requests_per_firing": {"op": "==", "value": 1},
        }
        for key, target in targets.items():
            assert body[key]["target"] == target, key
        # Exactly one execution and one request per firing; no state machine on success.
        for key in (
            "firings.executions_per_firing",
            "firings.first_attempt_requests_per_firing",
            "firings.state_machine_executions_per_1000",
            "firings.runs_succeeded",
        ):
            assert body[key]["pass"], key
        assert body["firings.executions"]["value"] == body["firings.delivered"]["target"]["value"]
        assert body["firings.webhook_requests"]["pass"]
        # The retried firing is reported beside the mix, with the transitions it was given.
        assert (
            body["firings.transitions_with_2_retries"]["value"] == cost.STATIC_TRANSITIONS_2_RETRIES
        )
        assert "target" not in body["cost.kind.scheduled_firing_2_retries"]
        assert body["cost.step_functions_usd"]["value"] == 0
        assert (
            body["cost.kind.scheduled_firing_2_retries"]["value"]
            > body["cost.kind.scheduled_firing"]["value"] + 15 * 25
        )


def test_package_top_level_names() -> None:
    assert _top_level("pydantic/main.py") == "pydantic"
    assert _top_level("six.py") == "six"
    assert _top_level("_cffi_backend.cpython-313-x86_64-linux-gnu.so") == "_cffi_backend"
    assert _top_level("pydantic-2.14.3.dist-info/RECORD") == ""
