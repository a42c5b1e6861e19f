"""The MALOS Everloop driver: the ring of RGBW LEDs (35 on a MATRIX Creator, 18 on a Voice)."""
