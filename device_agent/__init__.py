"""The device agent: signed usage records from Raspberry Pi-class hardware."""
