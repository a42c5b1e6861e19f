"""The floors for `perf.py`: a Python process that does only what no bridge can avoid.

    python benchmarks/perf_null.py --host H --base-port N --config-hex HEX [--keepalive 1.0]
        [--mqtt-port P --topic T]

It is built like the bridge, one thread around one `zmq.Poller`, and imports paho-mqtt as any
MQTT bridge must (for the memory floor): it sends one driver config (given as hex, built by
perf.py, which sets the driver's update interval), pings the keep-alive port every
`--keepalive` seconds and receives every update. No protobuf, no pin table, no config.

Without `--mqtt-port` it does nothing with an update: the idle floor. With it, it also keeps
a paho session in the same poll and publishes every update that differs from the previous one
to `--topic` (QoS 1, the frame as hex): the state-latency floor of a Python bridge on pyzmq and
paho, the ZeroMQ hop into another process and one paho publish with nothing in between. And
it subscribes to `--topic`/set and sends, for each message there, the config frame given as
`--command-hex` for the payload ON and `--command-off-hex` for anything else: the command
floor, one paho receive and one ZeroMQ push.

It prints `ready` once the first update has arrived (and the MQTT session is up, if any), then
runs until killed. perf.py measures it next to the bridge, in the same run.

    python benchmarks/perf_null.py --pull-port P

does nothing but that one unavoidable hop: it binds a ZeroMQ PULL on P, polls it as the
simulated driver polls its config socket, and prints `time.monotonic_ns()` as each frame
arrives (the clock perf.py uses too): perf.py's baseline for a push into another process.
"""

from __future__ import annotations

import argparse
import os
import select
import time

import paho.mqtt.client as paho
import zmq
from paho.mqtt.enums import CallbackAPIVersion


def connect(host: str, port: int, commands: str) -> paho.Client:
    """A paho session, connected and subscribed to `commands`, fed by the caller from now on."""
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"perf-null-{os.getpid()}")
    client.connect(host, port)
    while not client.is_connected():
        select.select([client.socket()], [], [], 1.0)  # wait for the CONNACK, do not spin
        client.loop_read()
    client.subscribe(commands, qos=0)
    return client


def serve(
    host: str,
    base_port: int,
    config: bytes,
    *,
    keepalive: float,
    mqtt: tuple[int, str] | None,
    command_frames: tuple[bytes, bytes],
) -> None:
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
    client = connect(host, mqtt[0], f"{mqtt[1]}/set") if mqtt is not None else None
    if client is not None:
        on, off = command_frames
        client.on_message = lambda _c, _u, message: config_out.send(
            on if message.payload == b"ON" else off, zmq.NOBLOCK
        )
    fileno = client.socket().fileno() if client is not None else None
    if fileno is not None:
        poller.register(fileno, zmq.POLLIN)
    next_ping = time.monotonic()
    ready = False
    last = None
    while True:
        now = time.monotonic()
        if now >= next_ping:
            ping_out.send(b"", zmq.NOBLOCK)
            next_ping = now + keepalive
            if client is not None:
                client.loop_misc()
        events = dict(poller.poll(int((next_ping - now) * 1000) + 1))
        if client is not None and fileno in events:
            client.loop_read()
        if updates_in in events:
            frame = updates_in.recv(zmq.NOBLOCK)
            if client is not None and mqtt is not None and frame != last:
                client.publish(mqtt[1], frame.hex(), qos=1)
            last = frame
            if not ready:
                print("ready", flush=True)
                ready = True
        if client is not None and client.want_write():
            client.loop_write()


def pull_clock(host: str, port: int) -> None:
    """Bind a PULL on host:port and print the monotonic clock (ns) as each frame arrives."""
    context = zmq.Context()
    pull = context.socket(zmq.PULL)
    pull.setsockopt(zmq.LINGER, 0)
    pull.bind(f"tcp://{host}:{port}")
    poller = zmq.Poller()
    poller.register(pull, zmq.POLLIN)
    print("ready", flush=True)
    while True:
        if poller.poll(100):  # as the simulated driver polls
            pull.recv(zmq.NOBLOCK)
            print(time.monotonic_ns(), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--pull-port", type=int, help="only time ZeroMQ frames arriving there")
    parser.add_argument("--base-port", type=int)
    parser.add_argument("--config-hex")
    parser.add_argument("--keepalive", type=float, default=1.0)
    parser.add_argument("--mqtt-port", type=int, help="also republish changed updates")
    parser.add_argument("--topic", default="perf/null/state")
    parser.add_argument("--command-hex", default="")
    parser.add_argument("--command-off-hex", default="")
    args = parser.parse_args()
    if args.pull_port is not None:
        pull_clock(args.host, args.pull_port)
        return
    if args.base_port is None or args.config_hex is None:
        parser.error("--base-port and --config-hex are needed (or --pull-port alone)")
    mqtt = (args.mqtt_port, args.topic) if args.mqtt_port else None
    frames = (bytes.fromhex(args.command_hex), bytes.fromhex(args.command_off_hex))
    config = bytes.fromhex(args.config_hex)
    serve(
        args.host,
        args.base_port,
        config,
        keepalive=args.keepalive,
        mqtt=mqtt,
        command_frames=frames,
    )


if __name__ == "__main__":
    main()
