"""``verify`` on two cores (``checkers.judges``): the same report as on one, a mistake caught
whichever process judges it, and table entries that cross as themselves."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import manual
from manual import CATALOGUE, EQUATIONS, LOSSES, MSE
from property_tests.checkers import judges as J
from property_tests.checkers import verify
from property_tests.checkers.verify import run_verify
from property_tests.command.cli import main
from property_tests.tests.sweeps import SWEEP


def _report(report) -> dict:
    out = report.as_dict()
    out.pop("seconds")
    return {**out, "fingerprints": report.fingerprints}


def _hidden_delta_off(theta_next, delta_next, z, g):
    """Equation (2) off by a relative 1e-6: a module-level function, so it is sent to the worker."""
    return (1 + 1e-6) * manual.hidden_delta(theta_next, delta_next, z, g)


WRONG_2 = dataclasses.replace(EQUATIONS, hidden_delta=_hidden_delta_off)


@pytest.fixture(scope="module")
def judges():
    with J.Judges() as pool:
        yield pool


@SWEEP  # verify with a second process: under the ci and thorough profiles (sweeps.py)
def test_two_processes_give_the_same_report_as_one(judges):
    alone = run_verify(600, 5)
    shared = run_verify(600, 5, judges=judges)
    assert _report(shared) == _report(alone)
    assert shared.verified


@SWEEP  # verify with a second process: under the ci and thorough profiles (sweeps.py)
def test_the_worker_judged_some_networks(judges, monkeypatch):
    """The equality above must not come from the worker never being asked."""
    sent = []
    submit = J.Judges.submit
    monkeypatch.setattr(J.Judges, "submit", lambda self, p, e: sent.append(len(p)) or submit(self, p, e))
    run_verify(300, 1, judges=judges)
    assert sum(sent) > 0


@SWEEP  # verify with a second process: under the ci and thorough profiles (sweeps.py)
@pytest.mark.parametrize("equations", [WRONG_2], ids=["hidden delta off by 1e-6, judged in the worker"])
def test_a_mistake_judged_in_the_worker_is_caught(judges, equations):
    assert J.shippable(equations)
    report = run_verify(200, 2, equations=equations, judges=judges)
    assert not report.verified and report.counterexample is not None
    assert report.counterexample["equation"] == "(2)"


@SWEEP  # verify with a second process: under the ci and thorough profiles (sweeps.py)
def test_a_mistake_that_cannot_be_sent_is_judged_here_and_caught(judges):
    local = dataclasses.replace(EQUATIONS, hidden_delta=lambda t, d, z, g: 1.001 * manual.hidden_delta(t, d, z, g))
    assert not J.shippable(local)
    assert not run_verify(100, 2, equations=local, judges=judges).verified


def test_table_entries_cross_as_themselves_and_others_by_value():
    g, loss = CATALOGUE["gelu"], LOSSES["cross_entropy"]
    assert J.loads(J.dumps([g, loss])) == [g, loss]
    assert J.loads(J.dumps(g)) is g and J.loads(J.dumps(loss)) is loss
    copy = dataclasses.replace(CATALOGUE["tanh"], name="my_tanh")
    back = J.loads(J.dumps(copy))
    assert back == copy and back is not copy
    z = np.linspace(-3, 3, 7)
    assert np.array_equal(back.forward(z, np), copy.forward(z, np))


def test_a_failed_worker_job_is_done_here() -> None:
    import concurrent.futures
    import concurrent.futures.process

    future: concurrent.futures.Future = concurrent.futures.Future()
    future.set_exception(concurrent.futures.process.BrokenProcessPool("gone"))
    assert J.Pending(future, lambda: "judged here").result() == "judged here"


@SWEEP  # verify with a second process: under the ci and thorough profiles (sweeps.py)
def test_jobs_option_gives_the_same_json(monkeypatch, capsys):
    monkeypatch.setattr(verify, "LOSSES", {"mse": MSE})  # one loss: one compilation
    reports = []
    for jobs in ("1", "2"):
        assert (
            main(["verify", "--examples", "200", "--seed", "4", "--networks", "dense", "--jobs", jobs, "--json"]) == 0
        )
        out = json.loads(capsys.readouterr().out)
        out.pop("seconds")
        reports.append(out)
    assert reports[0] == reports[1]


def test_default_jobs_reads_the_variable(monkeypatch):
    monkeypatch.setenv(J.JOBS_VARIABLE, "1")
    assert J.default_jobs() == 1
    monkeypatch.setenv(J.JOBS_VARIABLE, "")
    assert J.default_jobs() == min(2, J.cpus())


def test_a_piece_that_cannot_be_pickled_is_judged_here(judges, monkeypatch):
    monkeypatch.setattr(J, "judge_pairs", lambda pairs, equations: ["judged here"] * len(pairs))
    done = judges.submit([(lambda: None, None)], EQUATIONS)
    assert isinstance(done, J.Done) and done.result() == ["judged here"]


def test_a_piece_the_worker_has_not_started_is_taken_back_and_judged_here() -> None:
    import concurrent.futures

    waiting: concurrent.futures.Future = concurrent.futures.Future()
    taken = J.reclaim(J.Pending(waiting, lambda: None), [], EQUATIONS)
    assert isinstance(taken, J.Done) and taken.result() == [] and waiting.cancelled()
    running: concurrent.futures.Future = concurrent.futures.Future()
    running.set_running_or_notify_cancel()  # started: the worker finishes it
    job = J.Pending(running, lambda: None)
    assert J.reclaim(job, [], EQUATIONS) is job and not running.cancelled()
