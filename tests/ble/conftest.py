from tests.fakes.bluez_fixtures import fake_bluez, private_bus

__all__ = ["fake_bluez", "private_bus"]
