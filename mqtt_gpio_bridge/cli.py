"""The `mqtt-gpio-bridge` command line."""

from __future__ import annotations

import argparse
import logging
import sys
import threading
from collections.abc import Sequence

from . import __version__
from .errors import ConfigError

logger = logging.getLogger(__name__)

EXIT_CONFIG = 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mqtt-gpio-bridge",
        description="Bridge the GPIO pins of a MATRIX Creator / Voice (MALOS) to MQTT.",
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

    run = commands.add_parser("run", help="run the bridge")
    run.add_argument("--config", required=True, help="YAML config file")

    check = commands.add_parser("check-config", help="validate a config and show its topics")
    check.add_argument("--config", required=True, help="YAML config file")

    health = commands.add_parser(
        "health",
        help="exit 0 if the bridge is online (connected to the broker and to MALOS), else 1",
    )
    health.add_argument("--config", required=True, help="YAML config file")
    health.add_argument("--timeout", type=float, default=5.0, help="seconds to wait (5)")

    announce = commands.add_parser(
        "discovery", help="print the Home Assistant discovery messages a config publishes"
    )
    announce.add_argument("--config", required=True, help="YAML config file")

    simulate = commands.add_parser(
        "simulate", help="a simulated MALOS GPIO driver; drive its inputs from stdin"
    )
    simulate.add_argument("--host", default="127.0.0.1", help="interface to bind (MALOS: *)")
    simulate.add_argument("--base-port", type=int, default=20049, help="config port (20049)")

    demo = commands.add_parser(
        "demo", help="embedded broker + simulator + bridge on localhost, to try it all"
    )
    demo.add_argument("--config", default=None, help="config (default: config.example.yaml)")
    demo.add_argument("--mqtt-port", type=int, default=1883, help="broker port (1883)")
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
            return _discovery(args.config)
        if args.command == "simulate":
            return _without_sim_extra("simulate") or _simulate(args.host, args.base_port)
        if args.command == "demo":
            if _without_sim_extra("demo", extra="demo"):
                return 1
            from .sim.demo import run_demo

            return run_demo(args.config, args.mqtt_port)
    except ConfigError as exc:
        print(f"configuration problems in {getattr(args, 'config', '')}:", file=sys.stderr)
        for problem in exc.problems:
            print(f"  {problem}", file=sys.stderr)
        return EXIT_CONFIG
    except KeyboardInterrupt:
        return 0
    raise AssertionError(f"unhandled command {args.command}")


def _run(config_path: str) -> int:
    from .config import load_config
    from .core.bridge import serve

    config = load_config(config_path)
    serve(config)
    return 0


def _check_config(config_path: str) -> int:
    from .config import load_config, summarize

    config = load_config(config_path)
    print(f"{config_path}: valid")
    for line in summarize(config):
        print(f"  {line}")
    return 0


def _health(config_path: str, timeout: float) -> int:
    from .config import load_config
    from .health import bridge_status

    config = load_config(config_path)
    status = bridge_status(config, timeout)
    print(f"{config.mqtt.base_topic}/status: {status}")
    return 0 if status == "online" else 1


def _discovery(config_path: str) -> int:
    import json

    from .config import load_config
    from .homeassistant.discovery import announcements, own_configs_filter

    config = load_config(config_path)
    if not config.homeassistant.discovery:
        print("homeassistant.discovery is false: nothing is published, nothing is cleared")
        return 0
    for announcement in announcements(config):
        print(f"{announcement.topic} (retained)")
        print(json.dumps(json.loads(announcement.payload), indent=2))
        print()
    print(
        f"At start, retained configs under {own_configs_filter(config)} that no configured pin "
        "owns (gpio<pin> switches and binary sensors) are cleared with an empty retained payload."
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


def _simulate(host: str, base_port: int) -> int:
    from .sim.driver import CONSOLE_HELP, SimulatedDriver, console_command

    driver = SimulatedDriver(host, base_port)
    try:
        driver.start()
    except OSError as exc:  # port taken, bad interface
        print(f"cannot start the simulator: {exc}", file=sys.stderr)
        return 1
    print(f"simulated MALOS GPIO driver on {host}:{base_port}..{base_port + 3}")
    print(CONSOLE_HELP)
    try:
        for line in sys.stdin:
            reply = console_command(driver, line)
            if reply:
                print(reply, flush=True)
        # stdin closed (e.g. run in the background): keep serving until interrupted
        threading.Event().wait()
    finally:
        driver.stop()
    return 0
