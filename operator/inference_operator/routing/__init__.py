"""Which replica takes a request: pure choices shared by the gateway and the simulator."""
