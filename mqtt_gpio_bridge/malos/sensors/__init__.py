"""The MATRIX Creator's sensor drivers (humidity, pressure, UV, IMU): their wire format."""
