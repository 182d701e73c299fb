"""The benchmark's WAN delay (bench/wanlink.py) adds what it is asked: a relay of 60 ms round
trip in front of an echo server, probed like ping, measures at least 60 ms a round trip and
two for the first exchange of a connection (TCP's handshake), and passes data both ways."""

from __future__ import annotations

import json
import subprocess
import sys

from support.wanlink import WANLINK, processes, serve


def test_relay_holds_each_direction_for_half_the_round_trip():
    with processes() as started:
        echo, echo_port = serve("echo", "--listen", "127.0.0.1:0")
        started.append(echo)
        relay, relay_port = serve(
            "relay", "--listen", "127.0.0.1:0", "--upstream", f"127.0.0.1:{echo_port}",
            "--rtt-ms", "60",
        )  # fmt: skip
        started.append(relay)
        probe = subprocess.run(
            [sys.executable, str(WANLINK), "probe", "--to", f"127.0.0.1:{relay_port}",
             "--count", "5", "--mb", "0.1"],
            capture_output=True, text=True, timeout=60, check=True,
        )  # fmt: skip
        figures = json.loads(probe.stdout)
    # a lower bound only: a loaded machine adds time, never removes it
    assert figures["rtt_ms_min"] >= 60, figures
    assert figures["first_exchange_ms"] >= 120, figures
    assert figures["rtt_ms_median"] < 60 + 200, figures  # the delay, not a stall
    assert figures["down_mbit"] > 0 and figures["up_mbit"] > 0, figures
