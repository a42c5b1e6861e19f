"""The simulated sensor drivers behave like the Creator's (and the Voice's) MALOS drivers.

These tests talk to them as any MALOS client would: raw ZeroMQ sockets, configs built with the
official protobuf classes or the bridge's codec, updates read with the bridge's codec and
cross-checked with the official classes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from mqtt_gpio_bridge.malos.sensors.codec import (
    HumidityUpdate,
    ImuUpdate,
    PressureUpdate,
    UvUpdate,
    decode_humidity,
    decode_imu,
    decode_pressure,
    decode_uv,
    encode_humidity_calibration,
)
from mqtt_gpio_bridge.sim.driver import CONSOLE_HELP, SimulatedDriver, console_command
from mqtt_gpio_bridge.sim.proto import UV, DriverConfig, Humidity, Imu, Pressure
from mqtt_gpio_bridge.sim.sensors import (
    CONFIG_ACCEPTED,
    CONFIG_REFUSED,
    CONFIG_UNPARSABLE,
    DEFAULT_HUMIDITY_PORT,
    DEFAULT_IMU_PORT,
    DEFAULT_PRESSURE_PORT,
    DEFAULT_UV_PORT,
    IMU_VALUES,
    SENSOR_COMMANDS,
    SENSOR_HELP,
    VOICE,
    SimulatedHumidityDriver,
    SimulatedImuDriver,
    SimulatedPressureDriver,
    SimulatedSensorDriver,
    SimulatedUvDriver,
    altitude_from_pressure,
    error_no_update,
    error_refused,
    error_unparsable,
    float32,
    oms_risk,
    sensor_command,
    sensor_drivers,
)

from .helpers import RawClient, free_port_block, wait_until


@dataclass(frozen=True)
class Case:
    """One sensor driver: its class, values to set, and what its next update must say."""

    driver: type[SimulatedSensorDriver]
    values: dict[str, float]
    decode: Callable[[bytes], Any]
    official: Any
    expected: Any


IMU_SET = {name: float(index) - 5.25 for index, name in enumerate(IMU_VALUES)}
CASES = [
    Case(
        SimulatedHumidityDriver,
        {"humidity": 45.5, "temperature": 21.0},
        decode_humidity,
        Humidity,
        HumidityUpdate(humidity=45.5, temperature=21.0, temperature_raw=21.0),
    ),
    Case(
        SimulatedPressureDriver,
        {"pressure": 90000.0, "temperature": -4.5},
        decode_pressure,
        Pressure,
        PressureUpdate(90000.0, float32(altitude_from_pressure(90000.0)), -4.5),
    ),
    Case(SimulatedUvDriver, {"uv_index": 7.5}, decode_uv, UV, UvUpdate(7.5, "High")),
    Case(SimulatedImuDriver, IMU_SET, decode_imu, Imu, ImuUpdate(**IMU_SET)),
]
IDS = ["humidity", "pressure", "uv", "imu"]


def sub_connected(client: RawClient) -> None:
    """Give the SUB sockets time to connect (ZeroMQ slow joiner): nothing must arrive."""
    assert client.error(timeout=0.2) is None


def send(driver: SimulatedSensorDriver, client: RawClient, frame: bytes) -> str:
    """Send one config; return what became of it once the driver handled it."""
    before = len(driver.configs)
    client.send(frame)
    wait_until(lambda: len(driver.configs) > before, what="config handled")
    return driver.configs[before]


def timing(delay: float = 0.0, timeout: float = 0.0) -> bytes:
    frame: bytes = DriverConfig(
        delay_between_updates=delay, timeout_after_last_ping=timeout
    ).SerializeToString()
    return frame


def quick(driver: SimulatedSensorDriver, timeout: float = 5.0) -> None:
    """Shorter timings, set directly: a config would also calibrate a humidity driver."""
    driver.delay_between_updates = 0.02
    driver.timeout_after_last_ping = timeout


def fresh_update(client: RawClient) -> bytes:
    """The next update sent after now (queued ones skipped)."""
    client.drain()
    frame = client.update()
    assert frame is not None, "no update"
    return frame


def fields(message: Any) -> dict[str, Any]:
    return {field.name: value for field, value in message.ListFields()}


# -- updates, only while pinged --------------------------------------------------------------


def test_each_driver_has_its_malos_name_and_port() -> None:
    assert [(case.driver.name, case.driver.default_port) for case in CASES] == [
        ("Humidity", DEFAULT_HUMIDITY_PORT),
        ("Pressure", DEFAULT_PRESSURE_PORT),
        ("UV", DEFAULT_UV_PORT),
        ("IMU", DEFAULT_IMU_PORT),
    ]
    assert (DEFAULT_IMU_PORT, DEFAULT_HUMIDITY_PORT, DEFAULT_PRESSURE_PORT, DEFAULT_UV_PORT) == (
        20013,
        20017,
        20025,
        20029,
    )
    assert SimulatedUvDriver().base_port == 20029  # creating one binds nothing


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_updates_carry_the_values_set_only_while_pinged(
    case: Case, malos_port: int, client: RawClient
) -> None:
    with case.driver("127.0.0.1", malos_port) as driver:
        driver.set(**case.values)
        sub_connected(client)
        assert client.update(timeout=0.3) is None  # no ping, no update
        quick(driver, timeout=0.3)
        client.ping()
        frame = fresh_update(client)
        assert case.decode(frame) == case.expected
        # The official class reads the same frame the same way.
        official = case.official()
        official.ParseFromString(frame)
        assert case.decode(frame) == type(case.expected)(**fields(official))
        # A whole timeout without a ping: the updates stop; the next ping resumes them.
        wait_until(lambda: client.update(timeout=0.2) is None, what="updates stopped")
        sent = driver.updates_sent
        assert client.update(timeout=0.3) is None
        assert driver.updates_sent == sent
        driver.set(**dict.fromkeys(case.values, 1.0))
        client.ping()
        assert case.decode(fresh_update(client)) == type(case.expected)(
            **dict.fromkeys(case.values, 1.0),
            **_derived(case.driver, 1.0),
        )


def _derived(driver: type[SimulatedSensorDriver], value: float) -> dict[str, Any]:
    """What a driver adds to the values read, when they are all `value`."""
    if driver is SimulatedHumidityDriver:
        return {"temperature_raw": value}
    if driver is SimulatedPressureDriver:
        return {"altitude": float32(altitude_from_pressure(value))}
    if driver is SimulatedUvDriver:
        return {"oms_risk": oms_risk(value)}
    return {}


def test_updates_are_periodic_and_the_timings_are_whole_milliseconds(
    malos_port: int, client: RawClient
) -> None:
    with SimulatedPressureDriver("127.0.0.1", malos_port) as driver:
        assert (driver.delay_between_updates, driver.timeout_after_last_ping) == (1.0, 5.0)
        send(driver, client, timing(delay=0.0205, timeout=0.251))
        # float32(0.251) * 1000 is 250.99998 in float32, truncated to 250 ms
        assert (driver.delay_between_updates, driver.timeout_after_last_ping) == (0.02, 0.25)
        send(driver, client, timing(delay=-1.0))  # only values > 0 apply
        assert driver.delay_between_updates == 0.02
        client.ping()
        first = fresh_update(client)
        # Nothing changed, yet the same update keeps coming.
        assert [client.update() for _ in range(5)] == [first] * 5


def test_on_wire_sees_configs_as_received_and_updates_as_sent(malos_port: int) -> None:
    seen: list[tuple[str, bytes]] = []
    client = RawClient(malos_port)
    try:
        with SimulatedUvDriver(
            "127.0.0.1", malos_port, on_wire=lambda *wire: seen.append(wire)
        ) as driver:
            driver.set(uv_index=11.0)
            send(driver, client, b"\xff")
            client.ping()
            frame = fresh_update(client)
        assert seen[0] == ("config", b"\xff")
        assert ("update", frame) in seen[1:]
        assert decode_uv(frame) == UvUpdate(11.0, "Extreme")
    finally:
        client.close()


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_an_unparsable_config_publishes_the_parse_error_with_the_drivers_name(
    case: Case, malos_port: int, client: RawClient
) -> None:
    with case.driver("127.0.0.1", malos_port) as driver:
        sub_connected(client)
        assert send(driver, client, b"\xff\xff\xff") == CONFIG_UNPARSABLE
        assert client.error() == error_unparsable(driver.name)
    assert error_unparsable("IMU") == (
        "0, Invalid configuration for IMU driver. Could not parse protobuf."
    )


@pytest.mark.parametrize("driver", [SimulatedPressureDriver, SimulatedUvDriver, SimulatedImuDriver])
def test_the_other_sensors_accept_any_config_silently(
    driver: type[SimulatedSensorDriver], malos_port: int, client: RawClient
) -> None:
    with driver("127.0.0.1", malos_port) as running:
        sub_connected(client)
        humidity_config = encode_humidity_calibration(20.0)
        assert send(running, client, humidity_config) == CONFIG_ACCEPTED
        assert send(running, client, b"") == CONFIG_ACCEPTED
        assert client.error(timeout=0.3) is None


# -- a MATRIX Voice: no sensors, no error -----------------------------------------------------


@pytest.mark.parametrize(
    ("case", "voice_frame"),
    [
        (CASES[0], b""),
        (CASES[1], b""),
        (CASES[2], bytes(UV(oms_risk="Low").SerializeToString())),
        (CASES[3], b""),
    ],
    ids=IDS,
)
def test_on_a_voice_the_updates_carry_zeros_and_no_error(
    case: Case, voice_frame: bytes, malos_port: int, client: RawClient
) -> None:
    """Zeros from the bus; what the driver adds itself stays (UV's risk of index 0)."""
    with case.driver("127.0.0.1", malos_port, board=VOICE) as driver:
        driver.set(**case.values)  # kept, but nothing reads it
        sub_connected(client)
        quick(driver)
        client.ping()
        assert fresh_update(client) == voice_frame
        assert [client.update() for _ in range(3)] == [voice_frame] * 3
        assert client.error(timeout=0.2) is None
    assert voice_frame in (b"", bytes.fromhex("12034c6f77"))


def test_a_calibrated_humidity_driver_on_a_voice_still_says_so(
    malos_port: int, client: RawClient
) -> None:
    """It reads 0 °C from the bus, so the calibration offset is the whole temperature."""
    with SimulatedHumidityDriver("127.0.0.1", malos_port, board=VOICE) as driver:
        sub_connected(client)
        frame = encode_humidity_calibration(22.0, update_interval=0.02)
        assert send(driver, client, frame) == CONFIG_ACCEPTED
        client.ping()
        assert decode_humidity(fresh_update(client)) == HumidityUpdate(0.0, 22.0, 0.0, True)
        assert client.error(timeout=0.2) is None


def test_a_board_must_be_a_creator_or_a_voice() -> None:
    with pytest.raises(ValueError, match="board 'pi'"):
        SimulatedImuDriver(board="pi")


# -- humidity: calibration, and the failing driver ---------------------------------------------


def test_a_calibration_makes_the_temperature_read_the_true_one(
    malos_port: int, client: RawClient
) -> None:
    with SimulatedHumidityDriver("127.0.0.1", malos_port) as driver:
        driver.set(humidity=55.0, temperature=31.5)  # near the CPU: warm
        sub_connected(client)
        frame = encode_humidity_calibration(21.5, update_interval=0.02)
        assert send(driver, client, frame) == CONFIG_ACCEPTED
        assert driver.calibration_offset == -10.0
        client.ping()
        update = decode_humidity(fresh_update(client))
        assert update == HumidityUpdate(55.0, 21.5, 31.5, temperature_is_calibrated=True)
        # The offset holds for later readings.
        driver.set(temperature=33.0)
        assert decode_humidity(fresh_update(client)).temperature == 23.0
        # Every accepted config calibrates again: one without `humidity` means 0 °C.
        assert send(driver, client, timing(delay=0.02)) == CONFIG_ACCEPTED
        assert decode_humidity(fresh_update(client)) == HumidityUpdate(55.0, 0.0, 33.0, True)
        assert client.error(timeout=0.2) is None


def test_without_the_cpu_temperature_the_humidity_driver_fails_every_period(
    malos_port: int, client: RawClient
) -> None:
    with SimulatedHumidityDriver("127.0.0.1", malos_port, cpu_temperature=False) as driver:
        quick(driver)
        sub_connected(client)
        client.ping()
        assert client.error() == error_no_update("Humidity")
        assert client.error() == "1, Could not send update for Humidity driver."
        assert client.update(timeout=0.2) is None
        assert driver.errors_sent >= 2
        assert driver.updates_sent == 0


def test_without_the_cpu_temperature_a_calibration_is_refused_and_its_timings_ignored(
    malos_port: int, client: RawClient
) -> None:
    with SimulatedHumidityDriver("127.0.0.1", malos_port, cpu_temperature=False) as driver:
        sub_connected(client)
        frame = encode_humidity_calibration(21.5, update_interval=0.02, ping_timeout=9.0)
        assert send(driver, client, frame) == CONFIG_REFUSED
        assert client.error() == error_refused("Humidity")
        assert error_refused("Humidity") == "0, Invalid specific configuration for Humidity driver."
        assert client.error(timeout=0.2) is None  # one line: the driver adds none of its own
        assert (driver.delay_between_updates, driver.timeout_after_last_ping) == (1.0, 5.0)
        assert driver.calibration_offset is None


# -- values and the console -------------------------------------------------------------------


def test_set_refuses_what_the_sensor_does_not_read() -> None:
    driver = SimulatedPressureDriver()
    with pytest.raises(ValueError, match="reads pressure, temperature, not humidity"):
        driver.set(humidity=3.0)
    with pytest.raises(ValueError, match="must be a number"):
        driver.set(pressure=True)
    driver.set(pressure=math.nan)
    assert math.isnan(driver.values["pressure"])


@pytest.mark.parametrize(
    ("index", "risk"),
    [
        (0.0, "Low"),
        (2.99, "Low"),
        (2.9999999, "Moderate"),  # 3.0 as a float32
        (3.0, "Moderate"),
        (5.99, "Moderate"),
        (6.0, "High"),
        (8.0, "Very High"),
        (10.99, "Very High"),
        (11.0, "Extreme"),
        (-1.0, "Low"),
        (math.nan, "Extreme"),
    ],
)
def test_the_uv_risk_words_of_the_driver(index: float, risk: str) -> None:
    assert oms_risk(index) == risk


def test_the_altitude_is_the_barometric_formula_from_standard_sea_level_pressure() -> None:
    assert altitude_from_pressure(101325.0) == 0.0
    assert altitude_from_pressure(89874.6) == pytest.approx(1000.0, abs=0.5)
    assert altitude_from_pressure(107477.7) == pytest.approx(-500.0, abs=0.5)
    assert math.isnan(altitude_from_pressure(-1.0))


def test_the_console_sets_what_a_running_sensor_reads(malos_port: int, client: RawClient) -> None:
    humidity = SimulatedHumidityDriver("127.0.0.1", malos_port)
    pressure, uv = SimulatedPressureDriver(), SimulatedUvDriver()
    drivers = [humidity, pressure, uv, SimulatedImuDriver(board=VOICE)]
    with humidity:
        quick(humidity)
        assert sensor_command(drivers, "sensor humidity 45.5") == "Humidity humidity = 45.5"
        client.ping()
        wait_until(
            lambda: decode_humidity(fresh_update(client)).humidity == 45.5,
            what="an update with the new humidity",
        )
    assert sensor_command(drivers, "Sensor UV 7") == "UV uv_index = 7"
    assert uv.values == {"uv_index": 7.0}
    assert sensor_command(drivers, "sensor pressure temperature -3.5") == (
        "Pressure temperature = -3.5"
    )
    assert pressure.values["temperature"] == -3.5
    assert sensor_command(drivers, "sensor yaw 90") == (
        "IMU yaw = 90 (a MATRIX Voice: its updates carry zeros)"
    )
    assert sensor_command(drivers, "sensor temperature 21").startswith(
        "temperature is read by humidity or pressure: say which"
    )
    assert sensor_command(drivers, "sensor humidity nan") == "humidity: 'nan' is not a number"
    assert sensor_command(drivers, "sensor wind 3").startswith("no sensor reads 'wind'")
    assert sensor_command(drivers, "sensor gps lat 3").startswith("no sensor driver 'gps'")
    assert sensor_command(drivers, "sensor uv humidity 3") == "the UV sensor reads uv_index"
    shown = sensor_command(drivers, "sensor").splitlines()
    assert shown[0] == "Humidity: humidity 45.5, temperature 30"
    assert shown[2] == "UV: uv_index 7"
    assert sensor_command(drivers, "3 on").startswith("commands: sensor")


def test_the_simulators_console_hands_sensor_lines_to_the_sensors() -> None:
    gpio = SimulatedDriver("127.0.0.1", 1)  # never started: the console needs no sockets
    sensors = sensor_drivers()
    humidity, pressure, _, imu = sensors

    assert console_command(gpio, "sensor humidity 45.5", None, sensors) == (
        "Humidity humidity = 45.5"
    )
    assert humidity.values["humidity"] == 45.5
    assert console_command(gpio, "SENSOR pressure temperature 19.5", None, sensors) == (
        "Pressure temperature = 19.5"
    )
    assert pressure.values["temperature"] == 19.5
    assert console_command(gpio, "sensor roll 12", None, sensors) == "IMU roll = 12"
    assert imu.values["roll"] == 12.0
    assert console_command(gpio, "3 on", None, sensors) == "pin 3 driven high"
    # Without sensors a sensor line says how to get them, and the help stays the GPIO's.
    assert console_command(gpio, "sensor humidity 45.5") == (
        "no simulated sensors (start `simulate` with --sensors)"
    )
    assert console_command(gpio, "help") == CONSOLE_HELP


def test_show_and_help_include_the_sensors_when_they_run() -> None:
    gpio = SimulatedDriver("127.0.0.1", 1)
    sensors = sensor_drivers(board=VOICE)
    console_command(gpio, "sensor uv 7", None, sensors)

    rows = console_command(gpio, "show", None, sensors).splitlines()
    assert rows[:16] == console_command(gpio, "show").splitlines()
    assert rows[16:] == sensor_command(sensors, "sensor").splitlines()
    assert rows[18] == "UV: uv_index 7 (a MATRIX Voice: its updates carry zeros)"
    shown = console_command(gpio, "help", None, sensors)
    assert shown == console_command(gpio, "what?", None, sensors)
    lines = shown.splitlines()
    assert lines[-1].strip() == "help"
    assert "\n".join(lines[-1 - len(SENSOR_COMMANDS.splitlines()) : -1]) == SENSOR_COMMANDS
    # One table: the sensor commands' descriptions line up with the GPIO ones'.
    column = CONSOLE_HELP.index("drive")  # in its first line
    assert all(line[column - 1] == " " != line[column] for line in lines[1:-1])
    assert SENSOR_HELP.startswith("commands: sensor ")


def test_sensor_drivers_are_the_four_of_one_board_on_malos_ports_or_those_given() -> None:
    drivers = sensor_drivers()
    assert [(driver.name, driver.base_port, driver.board) for driver in drivers] == [
        ("Humidity", DEFAULT_HUMIDITY_PORT, "creator"),
        ("Pressure", DEFAULT_PRESSURE_PORT, "creator"),
        ("UV", DEFAULT_UV_PORT, "creator"),
        ("IMU", DEFAULT_IMU_PORT, "creator"),
    ]
    voice = sensor_drivers("0.0.0.0", VOICE, {"uv": 30000, "imu": 30004})
    assert [(driver.host, driver.base_port, driver.board) for driver in voice] == [
        ("0.0.0.0", DEFAULT_HUMIDITY_PORT, VOICE),
        ("0.0.0.0", DEFAULT_PRESSURE_PORT, VOICE),
        ("0.0.0.0", 30000, VOICE),
        ("0.0.0.0", 30004, VOICE),
    ]
    with pytest.raises(ValueError, match="no sensor driver gps"):
        sensor_drivers(ports={"gps": 30000})
    with pytest.raises(ValueError, match="board 'matrix'"):
        sensor_drivers(board="matrix")


def test_the_imu_reads_the_fields_of_the_codecs_update() -> None:
    assert [field.name for field in dataclasses.fields(ImuUpdate)] == list(IMU_VALUES)
    assert IMU_VALUES[0] == "yaw" and IMU_VALUES[-1] == "mag_z"


def test_a_bound_port_is_an_oserror(malos_port: int) -> None:
    with (
        SimulatedUvDriver("127.0.0.1", malos_port),
        pytest.raises(OSError, match="cannot bind"),
    ):
        SimulatedImuDriver("127.0.0.1", malos_port).start()


def test_drivers_on_their_own_ports_run_side_by_side() -> None:
    ports = [free_port_block(4) for _ in CASES]
    drivers = [case.driver("127.0.0.1", port) for case, port in zip(CASES, ports, strict=True)]
    clients = [RawClient(port) for port in ports]
    try:
        for driver in drivers:
            driver.start()
        for client in clients:
            client.ping()
        assert decode_pressure(fresh_update(clients[1])).pressure == 101325.0
        assert decode_imu(fresh_update(clients[3])).accel_z == 1.0
    finally:
        for client in clients:
            client.close()
        for driver in drivers:
            driver.stop()
