"""Allocates (and touches) more memory than the job may have."""

from qiskit_serverless import get_arguments

size = get_arguments()["megabytes"] * 1024 * 1024
block = bytearray(size)
block[::4096] = b"x" * len(block[::4096])
print("allocated", len(block))
