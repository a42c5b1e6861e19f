"""The idle floor for `perf.py`: a Python process that does only what no bridge can avoid.

    python benchmarks/perf_null.py --host H --base-port N --config-hex HEX [--keepalive 1.0]

It is an asyncio process with pyzmq's asyncio sockets, like the bridge: it sends one driver
config (given as hex, built by perf.py, which sets the driver's update interval), pings the
keep-alive port every `--keepalive` seconds and receives every update, doing nothing with it.
No MQTT, no protobuf, no pin table. It prints `ready` once the first update has arrived, then
runs until killed. perf.py measures its CPU time and memory next to the bridge's, in the same
window, so the bridge's idle figures can be read against "Python waking for each update".
"""

from __future__ import annotations

import argparse
import asyncio

import zmq
import zmq.asyncio


async def serve(host: str, base_port: int, config: bytes, keepalive: float) -> None:
    context = zmq.asyncio.Context()
    config_out = context.socket(zmq.PUSH)
    ping_out = context.socket(zmq.PUSH)
    updates_in = context.socket(zmq.SUB)
    updates_in.setsockopt(zmq.SUBSCRIBE, b"")
    for socket in (config_out, ping_out, updates_in):
        socket.setsockopt(zmq.LINGER, 0)
    config_out.connect(f"tcp://{host}:{base_port}")
    ping_out.connect(f"tcp://{host}:{base_port + 1}")
    updates_in.connect(f"tcp://{host}:{base_port + 3}")
    await config_out.send(config)

    async def ping() -> None:
        while True:
            await ping_out.send(b"")
            await asyncio.sleep(keepalive)

    pinger = asyncio.create_task(ping())
    try:
        await updates_in.recv()
        print("ready", flush=True)
        while True:
            await updates_in.recv()
    finally:
        pinger.cancel()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--base-port", type=int, required=True)
    parser.add_argument("--config-hex", required=True)
    parser.add_argument("--keepalive", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.base_port, bytes.fromhex(args.config_hex), args.keepalive))


if __name__ == "__main__":
    main()
