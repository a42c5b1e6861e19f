"""The `mqtt-gpio-bridge` command line."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from collections.abc import Sequence

from . import __version__
from .errors import ConfigError

logger = logging.getLogger(__name__)

EXIT_CONFIG = 2


EXIT_CODES = {
    "run": "exit status: 0 after SIGTERM/SIGINT (a clean stop), 2 for a config problem",
    "check-config": "exit status: 0 if the config is valid (warnings too), 2 if not (every "
    "problem is listed)",
    "health": "exit status: 0 if the retained status is online, 1 if not or unknown, 2 for a "
    "config problem",
    "discovery": "exit status: 0, 2 for a config problem",
    "simulate": "exit status: 0 after Ctrl-C, 1 if its ports cannot be bound or the `sim` "
    "extra is missing",
    "demo": "exit status: 0 after Ctrl-C, 1 if the broker or the simulator cannot start, "
    "2 for a config problem",
}


_SENSOR_DRIVERS = {"humidity": "humidity", "pressure": "pressure", "uv": "UV", "imu": "IMU"}
"""`simulate`'s sensor drivers: the name in `--<name>-port` and in `sim.sensors.sensor_drivers`,
and how the help names it."""


def _command(
    commands: argparse._SubParsersAction[argparse.ArgumentParser],
    name: str,
    summary: str,
    description: str,
) -> argparse.ArgumentParser:
    return commands.add_parser(
        name,
        help=summary,
        description=description,
        epilog=EXIT_CODES[name],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqtt-gpio-bridge",
        description="Bridge the GPIO pins of a MATRIX Creator / Voice (MALOS) to MQTT.",
        epilog="`mqtt-gpio-bridge COMMAND --help` describes each command and its exit status.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        type=str.upper,
        help="logging detail (default INFO)",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    run = _command(
        commands,
        "run",
        "run the bridge",
        "Run the bridge: connect to the MALOS GPIO driver and the MQTT broker of the config and\n"
        "serve until SIGTERM or SIGINT. Logs go to standard error.",
    )
    run.add_argument("--config", required=True, help="YAML config file")

    check = _command(
        commands,
        "check-config",
        "validate a config and show its topics",
        "Validate a config file without connecting to anything, and show what the bridge\n"
        "would do with it: broker, driver, each pin's topics, Home Assistant discovery.",
    )
    check.add_argument("--config", required=True, help="YAML config file")

    health = _command(
        commands,
        "health",
        "exit 0 if the bridge is online (connected to the broker and to MALOS), else 1",
        "Read the bridge's retained <base_topic>/status from the broker (a container's or a\n"
        "service manager's health check): online means connected to the broker and MALOS.",
    )
    health.add_argument("--config", required=True, help="YAML config file")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (5)")

    announce = _command(
        commands,
        "discovery",
        "print the Home Assistant discovery messages a config publishes",
        "Print the Home Assistant discovery messages (topic and JSON) the bridge publishes\n"
        "for a config, and which stale ones it clears; connects to nothing.",
    )
    announce.add_argument("--config", required=True, help="YAML config file")
    announce.add_argument(
        "--board",
        choices=("creator", "voice"),
        default="creator",
        help="the board found (the device's model, and sensors on a Creator only); default creator",
    )

    simulate = _command(
        commands,
        "simulate",
        "a simulated MALOS GPIO driver; drive its inputs from stdin",
        "A simulated MALOS GPIO driver on four ports, as MALOS has them: BASE (configs),\n"
        "BASE+1 (keep-alive pings), BASE+2 (errors), BASE+3 (updates). Type `<pin> on`,\n"
        "`<pin> off`, `<pin> toggle`, `<pin> press <ms>`, `<pin> double`, `<pin> play <ms>...`\n"
        "or `show` on its standard input; with --sensors, `sensor <value> <number>` too.\n"
        "Needs the `sim` extra.",
    )
    simulate.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to bind (default 127.0.0.1; 0.0.0.0 for every interface, as MALOS)",
    )
    simulate.add_argument(
        "--base-port",
        type=int,
        default=20049,
        metavar="BASE",
        help="the first of its four ports (default 20049, MALOS's GPIO driver)",
    )
    simulate.add_argument(
        "--servo-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also simulate MALOS's servo driver on PORT..PORT+3 (MALOS: 20045), on the same "
        "board: its writes fight the GPIO driver's over the direction register as on a board",
    )
    simulate.add_argument(
        "--everloop-port",
        type=int,
        default=None,
        metavar="PORT",
        help="also simulate MALOS's Everloop driver (the LED ring) on PORT..PORT+3 "
        "(MALOS: 20021); `show` draws the ring",
    )
    simulate.add_argument(
        "--sensors",
        action="store_true",
        help="also simulate MALOS's four sensor drivers, on their MALOS ports unless given "
        "below: humidity 20017, pressure 20025, UV 20029, IMU 20013; `sensor humidity 45.5` "
        "sets what one reads",
    )
    for sensor, label in _SENSOR_DRIVERS.items():
        simulate.add_argument(
            f"--{sensor}-port",
            type=int,
            default=None,
            metavar="PORT",
            help=f"the {label} driver on PORT..PORT+3 (implies --sensors)",
        )
    simulate.add_argument(
        "--board",
        choices=["creator", "voice"],
        default="creator",
        help="the board simulated (default creator); a MATRIX Voice's Everloop has 18 LEDs "
        "and its sensor drivers send zeros, as a Voice has no sensors",
    )

    demo = _command(
        commands,
        "demo",
        "broker + simulator + bridge on localhost, to try it all",
        "Run a broker (Mosquitto when installed, else the embedded amqtt of the `demo` extra),\n"
        "the simulated driver and the bridge together on localhost, and print what to try.",
    )
    demo.add_argument("--config", default=None, help="config (default: config.example.yaml)")
    demo.add_argument("--mqtt-port", type=int, default=1883, help="broker port (1883)")
    demo.add_argument(
        "--broker",
        choices=["auto", "mosquitto", "embedded"],
        default="auto",
        help="which broker to run (default auto: Mosquitto if installed, else embedded)",
    )
    for sub in (run, check, health, announce, simulate, demo):
        sub.add_argument(
            "--log-level",
            default=argparse.SUPPRESS,
            choices=["DEBUG", "INFO", "WARNING", "ERROR"],
            type=str.upper,
            help="logging detail (default INFO)",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the exit status."""
    args = _parser().parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format="%(asctime)s %(levelname)-7s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        if args.command == "run":
            return _run(args.config)
        if args.command == "check-config":
            return _check_config(args.config)
        if args.command == "health":
            return _health(args.config, args.timeout)
        if args.command == "discovery":
            return _discovery(args.config, args.board)
        if args.command == "simulate":
            sensor_ports = {
                sensor: getattr(args, f"{sensor}_port")
                for sensor in _SENSOR_DRIVERS
                if getattr(args, f"{sensor}_port") is not None
            }
            return _without_sim_extra("simulate") or _simulate(
                args.host,
                args.base_port,
                args.servo_port,
                args.everloop_port,
                sensor_ports=sensor_ports if args.sensors or sensor_ports else None,
                board=args.board,
            )
        if args.command == "demo":
            if _without_sim_extra("demo", extra="demo"):
                return 1
            from .sim.demo import run_demo

            return run_demo(args.config, args.mqtt_port, args.broker)
    except ConfigError as exc:
        source = getattr(args, "config", None)
        print(f"configuration problems{f' in {source}' if source else ''}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 0
    except BrokenPipeError:
        # The reader went away (`discovery ... | head`): say nothing more, and keep Python
        # from complaining about the closed pipe when it flushes standard output at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    raise AssertionError(f"unhandled command {args.command}")


def _run(config_path: str) -> int:
    from .config import load_config, warnings
    from .core.bridge import serve

    config = load_config(config_path)
    for line in warnings(config):
        logger.warning("%s: %s", config_path, line)
    serve(config)
    return 0


def _check_config(config_path: str) -> int:
    from .config import load_config, summarize, warnings

    config = load_config(config_path)
    print(f"{config_path}: valid")
    for line in summarize(config):
        print(f"  {line}")
    advice = warnings(config)
    if advice:
        print("warnings (valid, but likely not what you want):")
        for line in advice:
            print(f"  {line}")
    return 0


def _health(config_path: str, timeout: float) -> int:
    from .config import load_config
    from .health import bridge_status

    config = load_config(config_path)
    status = bridge_status(config, timeout)
    print(f"{config.mqtt.base_topic}/status: {status}")
    return 0 if status == "online" else 1


def _discovery(config_path: str, board: str = "creator") -> int:
    import json

    from .config import load_config
    from .homeassistant.discovery import announcements, device_topic, own_configs_filter

    config = load_config(config_path)
    if not config.homeassistant.discovery:
        print(
            "homeassistant.discovery is false: nothing is published; a device config an earlier "
            "run left is cleared, per-entity configs are left alone"
        )
        return 0
    # The board is known only with a section that pings the LED ring's driver.
    found = board.capitalize() if config.everloop or config.sensors else None
    for announcement in announcements(config, found):
        print(f"{announcement.topic} (retained)")
        print(json.dumps(json.loads(announcement.payload), indent=2, ensure_ascii=False))
        print()
    other = "entity" if config.homeassistant.discovery_mode == "device" else "device"
    print(
        f"At start, this node's retained configs ({own_configs_filter(config)} and "
        f"{device_topic(config)}) are read: those in the {other} form are moved to this one with "
        "Home Assistant's migration (entity ids kept), and those no configured pin owns are "
        "cleared with an empty retained payload (docs/home-assistant.md)."
    )
    return 0


def _without_sim_extra(command: str, extra: str = "sim") -> int:
    """1 after saying what to install if the simulator's dependencies are missing, else 0."""
    from .sim import missing_requirements

    missing = missing_requirements()
    if not missing:
        return 0
    print(
        f"`{command}` needs the simulator's dependencies ({', '.join(missing)} not installed): "
        f"pip install 'mqtt-gpio-bridge[{extra}]'",
        file=sys.stderr,
    )
    return 1


def _simulate(
    host: str,
    base_port: int,
    servo_port: int | None,
    everloop_port: int | None = None,
    *,
    sensor_ports: dict[str, int] | None = None,
    board: str = "creator",
) -> int:
    """`simulate`: `sensor_ports` None runs no sensor drivers, {} runs them on MALOS's ports."""
    from .sim.driver import MalosProcess, SimulatedDriver, console_command
    from .sim.everloop import SimulatedEverloopDriver
    from .sim.sensors import sensor_drivers
    from .sim.servo import SimulatedServoDriver

    driver = SimulatedDriver(host, base_port)
    servo = None if servo_port is None else SimulatedServoDriver(host, servo_port, driver.board)
    everloop = (
        None if everloop_port is None else SimulatedEverloopDriver(host, everloop_port, board)
    )
    sensors = [] if sensor_ports is None else sensor_drivers(host, board, sensor_ports)
    drivers: list[MalosProcess] = [
        process for process in (driver, servo, everloop, *sensors) if process is not None
    ]
    try:
        for process in drivers:
            process.start()
    except OSError as exc:  # port taken, bad interface
        print(f"cannot start the simulator: {exc}", file=sys.stderr)
        for process in drivers:
            process.stop()
        return 1
    started = [("GPIO", base_port), ("servo", servo_port), ("Everloop", everloop_port)]
    started += [(sensor.name, sensor.base_port) for sensor in sensors]
    for label, port in started:
        if port is not None:
            print(f"simulated MALOS {label} driver on {host}:{port}..{port + 3}")
    if board == "voice" and (everloop is not None or sensors):
        print("simulated board: a MATRIX Voice (18 LEDs, no sensors: their drivers send zeros)")
    print(console_command(driver, "help", everloop, sensors), flush=True)
    try:
        for line in sys.stdin:
            reply = console_command(driver, line, everloop, sensors)
            if reply:
                print(reply, flush=True)
        # stdin closed (e.g. run in the background): keep serving until interrupted
        threading.Event().wait()
    finally:
        for process in drivers:
            process.stop()
    return 0
