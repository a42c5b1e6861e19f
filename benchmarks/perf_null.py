"""The idle floor for `perf.py`: a Python process that does only what no bridge can avoid.

    python benchmarks/perf_null.py --host H --base-port N --config-hex HEX [--keepalive 1.0]

It is built like the bridge, one thread around one `zmq.Poller`, and imports paho-mqtt as any
MQTT bridge must (for the memory floor), but opens no MQTT connection: it sends one driver
config (given as hex, built by perf.py, which sets the driver's update interval), pings the
keep-alive port every `--keepalive` seconds and receives every update, doing nothing with it.
No protobuf, no pin table. It prints `ready` once the first update has arrived, then runs until
killed. perf.py measures its CPU time and memory next to the bridge's, in the same window, so
the bridge's idle figures can be read against "Python waking for each update".
"""

from __future__ import annotations

import argparse
import time

import paho.mqtt.client  # noqa: F401  (its import is part of any MQTT bridge's footprint)
import zmq


def serve(host: str, base_port: int, config: bytes, keepalive: float) -> None:
    context = zmq.Context()
    config_out = context.socket(zmq.PUSH)
    ping_out = context.socket(zmq.PUSH)
    updates_in = context.socket(zmq.SUB)
    updates_in.setsockopt(zmq.SUBSCRIBE, b"")
    for socket in (config_out, ping_out, updates_in):
        socket.setsockopt(zmq.LINGER, 0)
    config_out.connect(f"tcp://{host}:{base_port}")
    ping_out.connect(f"tcp://{host}:{base_port + 1}")
    updates_in.connect(f"tcp://{host}:{base_port + 3}")
    config_out.send(config)
    poller = zmq.Poller()
    poller.register(updates_in, zmq.POLLIN)
    next_ping = time.monotonic()
    ready = False
    while True:
        now = time.monotonic()
        if now >= next_ping:
            ping_out.send(b"", zmq.NOBLOCK)
            next_ping = now + keepalive
        if poller.poll(int((next_ping - now) * 1000) + 1):
            updates_in.recv(zmq.NOBLOCK)
            if not ready:
                print("ready", flush=True)
                ready = True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--base-port", type=int, required=True)
    parser.add_argument("--config-hex", required=True)
    parser.add_argument("--keepalive", type=float, default=1.0)
    args = parser.parse_args()
    serve(args.host, args.base_port, bytes.fromhex(args.config_hex), args.keepalive)


if __name__ == "__main__":
    main()
