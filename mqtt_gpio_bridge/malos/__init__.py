"""The MALOS side: the ZeroMQ link every driver speaks, and one sub-package per driver."""
