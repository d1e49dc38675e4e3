"""A short soak (bench.soak): steady mixed load on one node, then everything reconciles.

Zero loss (every acknowledged message in history exactly once, every member saw every
message), zero errors, and the node's descriptors back to their baseline once the clients
are gone. Memory is noisy at this length: only a generous bound.
"""

from __future__ import annotations

import os

from bench.soak import soak

SECONDS = 30.0 * float(os.environ.get("CHATD_TEST_TIME_SCALE", "1"))


def test_short_soak_loses_nothing_and_leaks_no_descriptor() -> None:
    r = soak(SECONDS / 60, conns=12, rate=40.0, nodes=1, every=5.0, reconnect_every=1.0)
    c, rec, v = r["counts"], r["reconcile"], r["verdict"]
    assert c["acked"] > 500 and c["sent"] == c["acked"], c
    assert c["errors"] == {} and c["given_up"] == 0, c
    assert c["reconnects"] >= 10 and c["logins"] >= 1 and c["history_reads"] > 0, c
    assert c["idem_checks"] > 0 and c["idem_mismatch"] == 0, c
    assert rec["lost_acked"] == 0 and rec["duplicates"] == 0 and rec["seq_gaps"] == 0, rec
    assert rec["stored_unacked"] == 0 and rec["unseen"] == 0 and rec["conflicts"] == 0, rec
    assert rec["stored"] == c["acked"], rec
    assert r["log_errors"] == 0
    assert r["node_exit"] == [None]
    node = v["nodes"][0]
    assert node["fds_after"] <= node["fds_base"] + 2, node  # every client's socket closed
    assert node["rss_end_mib"] < node["rss_base_mib"] + 100, node  # generous: noisy
