"""The exceptions the bridge raises; foreign ones are mapped to these at the boundary."""


class BridgeError(Exception):
    """Base class of every error this package raises on purpose."""


class ConfigError(BridgeError):
    """The configuration file is missing, unreadable or invalid.

    Attributes:
        problems: one line per problem, each starting with the key path.
    """

    def __init__(self, problems: list[str]) -> None:
        self.problems = problems
        super().__init__("; ".join(problems))


class CodecError(BridgeError):
    """A frame from MALOS could not be decoded."""


class BrokerError(BridgeError):
    """The MQTT broker refused the connection, did not answer in time, or the session ended."""
