"""The servo driver's wire format: the bridge's bytes against the official classes."""

from __future__ import annotations

import pytest

from mqtt_gpio_bridge.malos.servo.codec import encode_servo_config
from mqtt_gpio_bridge.sim.proto import DriverConfig


def official(pin: int, angle: int) -> bytes:
    config = DriverConfig()
    config.servo.pin = pin
    config.servo.angle = angle
    return bytes(config.SerializeToString())


def test_pin_4_at_90_degrees_is_the_official_frame() -> None:
    assert encode_servo_config(4, 90) == bytes.fromhex("3a040804105a")
    assert encode_servo_config(4, 90) == official(4, 90)


@pytest.mark.parametrize("pin", range(16))
@pytest.mark.parametrize("angle", [0, 1, 90, 127, 128, 179, 180])
def test_every_pin_and_the_angles_around_the_varint_step_match_the_official_classes(
    pin: int, angle: int
) -> None:
    assert encode_servo_config(pin, angle) == official(pin, angle)


def test_the_official_classes_read_back_what_was_encoded() -> None:
    config = DriverConfig()
    config.ParseFromString(encode_servo_config(15, 180))
    assert config.HasField("servo")
    assert (config.servo.pin, config.servo.angle) == (15, 180)
    assert not config.HasField("gpio")
    assert config.delay_between_updates == 0  # nothing else rides along


@pytest.mark.parametrize(("pin", "angle"), [(-1, 0), (16, 0), (0, -1), (0, 181), (3, 1000)])
def test_what_the_driver_would_not_refuse_is_never_encoded(pin: int, angle: int) -> None:
    with pytest.raises(ValueError, match="out of range"):
        encode_servo_config(pin, angle)
