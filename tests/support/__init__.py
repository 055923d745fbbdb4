"""Test helpers shared by every test module: real servers on loopback, no mocks."""
