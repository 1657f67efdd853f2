"""Fakes of every outside party, on 127.0.0.1: used by the tests and the local simulation."""
