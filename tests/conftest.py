"""Fixtures shared by every test directory: servers on loopback that stop by themselves."""
