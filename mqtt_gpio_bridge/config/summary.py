"""`summarize` and `warnings`: a configuration in a few human lines, and what in it is valid
but likely not what the user wants, for `check-config` (the bridge logs the warnings at start).
"""

from __future__ import annotations

from ..mqtt.topics import Topics
from .model import BridgeConfig

QUICK_TAP_INTERVAL = 0.05
"""Seconds between updates above which a quick tap (about 80 ms) can fall between two."""
EVENTS_INTERVAL = 0.02
"""The update interval recommended for inputs with press events."""


def summarize(config: BridgeConfig) -> list[str]:
    """Describe a configuration in a few human lines (for `check-config`).

    Args:
        config: a validated configuration.

    Returns:
        One line for the broker, one for how commands and states are paced, one for the
        GPIO driver (and one for the servo driver when a pin has `mode: servo`), one per pin
        and one for Home Assistant discovery. The password is never included.
    """
    mqtt, malos, ha = config.mqtt, config.malos, config.homeassistant
    user = f" (user {mqtt.username})" if mqtt.username is not None else ""
    if mqtt.tls is not None:
        user += ", TLS" + (" without host name check" if mqtt.tls.insecure else "")
    retained = "applied" if mqtt.retained_commands == "apply" else "ignored"
    lines = [
        f"mqtt {mqtt.host}:{mqtt.port} as {config.client_id}{user}, "
        f"base topic {mqtt.base_topic}, qos {mqtt.qos}",
        f"retained commands {retained}, at most {mqtt.max_state_rate} states a second per pin",
        f"malos {malos.host}:{malos.base_port}..{malos.base_port + 3}, "
        f"updates every {malos.update_interval:g} s, offline after {malos.offline_after:g} s",
    ]
    if any(spec.is_servo for spec in config.pins):
        lines.append(f"malos servo driver {malos.host}:{malos.servo_port}..{malos.servo_port + 3}")
    topics = Topics(mqtt.base_topic)
    for spec in config.pins:
        line = f"pin {spec.pin} {spec.mode}"
        if spec.name is not None:
            line += f' "{spec.name}"'
        line += f" -> {topics.state(spec.pin)}"
        if spec.is_output or spec.is_servo:
            line += f", commands on {topics.command(spec.pin)}"
        notes = []
        if spec.is_servo:
            notes.append(f"angles {spec.lowest_angle}..{spec.highest_angle}")
        if spec.inverted:
            notes.append("inverted")
        if spec.initial is not None:
            notes.append(f"initial {spec.initial}")
        if spec.pulse_ms is not None:
            notes.append(f"on = {spec.pulse_ms} ms pulse")
        if spec.debounce_ms:
            notes.append(f"debounce {spec.debounce_ms} ms")
        if spec.events:
            notes.append(f"events {', '.join(spec.events)} on {topics.event(spec.pin)}")
        if notes:
            line += f" ({', '.join(notes)})"
        lines.append(line)
    for link in config.links:
        duration = f" for {link.duration_ms} ms" if link.duration_ms is not None else ""
        lines.append(
            f"link: pin {link.input} {link.trigger} -> pin {link.output} {link.action}{duration}"
        )
    if config.everloop is not None or config.sensors is not None:
        port = malos.everloop_port
        use = "the LED ring" if config.everloop is not None else "only to tell the board"
        lines.append(f"malos everloop driver {malos.host}:{port}..{port + 3} ({use})")
    if config.everloop is not None:
        lines.append(
            f"everloop: light on {topics.everloop_state}, commands on {topics.everloop_set} "
            f"(effects at {config.everloop.fps} fps, {config.everloop.on_stop} on stop)"
        )
    if config.sensors is not None:
        sensors = config.sensors
        lines.append(
            f"sensors on a MATRIX Creator: {', '.join(sensors.enabled)} -> "
            f"{topics.sensor_state('<name>')}, read every {sensors.update_interval:g} s, "
            f"published on a change or every {sensors.publish_every:g} s"
            + (
                f", temperature calibrated to {sensors.calibrate_temperature:g} °C"
                if sensors.calibrate_temperature is not None
                else ""
            )
        )
    if ha.discovery:
        lines.append(
            f"home assistant discovery on ({ha.discovery_mode} form), prefix {ha.prefix}, "
            f"node_id {ha.node_id}"
        )
    else:
        lines.append("home assistant discovery off")
    return lines


def warnings(config: BridgeConfig) -> list[str]:
    """What is valid but likely not meant, one line each with its key path.

    Args:
        config: a validated configuration.
    """
    found = []
    interval = config.malos.update_interval
    if interval > QUICK_TAP_INTERVAL:
        for index, spec in enumerate(config.pins):
            if spec.events:
                found.append(
                    f"pins[{index}].events: the driver sends levels every {interval:g} s "
                    "(malos.update_interval), so a quick tap can fall between two updates and "
                    f"be missed; set malos.update_interval: {EVENTS_INTERVAL:g} for buttons"
                )
    return found
