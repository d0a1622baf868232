"""``verify --shard K/N``: the N shards of a seed check disjoint networks whose union is the
unsharded run, dense networks and networks of layers alike."""

from __future__ import annotations

import json

import pytest

from manual import MSE
from property_tests.checkers import verify, verify_layers
from property_tests.command.cli import main
from property_tests.tests.sweeps import SWEEP

pytestmark = SWEEP  # verify in shards: under the ci and thorough profiles (sweeps.py)


def dense_run(shard=(1, 1)):
    return verify.run_verify(45, 5, losses=[MSE], shard=shard).fingerprints


def layer_run(shard=(1, 1)):
    return verify_layers.run_layer_verify(5, draws=2, shard=shard).fingerprints


def shards_partition(run, n: int) -> None:
    whole = run()
    parts = [run((k, n)) for k in range(1, n + 1)]
    joined = [name for part in parts for name in part]
    assert len(set(joined)) == len(joined), "two shards checked the same network"
    assert sorted(joined) == sorted(whole), "the shards together are not the unsharded run"
    assert len(set(whole)) == len(whole) > n


@pytest.mark.parametrize("run", [dense_run, layer_run], ids=["dense", "layers"])
def test_shards_are_disjoint_and_make_up_the_run(run):
    shards_partition(run, 3)


def test_the_partition_check_rejects_overlapping_shards(monkeypatch):
    # a shard rule that hands network 0 to every shard: the same property must fail
    monkeypatch.setattr(verify, "in_shard", lambda i, s: i % s[1] == s[0] - 1 or i == 0)
    with pytest.raises(AssertionError, match="same network"):
        shards_partition(dense_run, 3)


def test_shard_in_json_and_bad_shards_are_refused(capsys):
    assert main(["verify", "--examples", "30", "--networks", "dense", "--shard", "2/4", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["shard"] == "2/4" and report["examples"] == len(range(1, 30, 4))  # networks 1, 5, …, 29
    for bad in ("0/4", "5/4", "x/4", "2"):
        assert main(["verify", "--shard", bad]) == 2
        err = capsys.readouterr().err
        assert "K/N" in err and len(err.strip().splitlines()) == 1
