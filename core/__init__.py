"""What the gateway and the executor share: settings, storage and its key layout, the job spec,
artifact checks, the dependency allow-list, the status mapping and the log and stop texts.

It imports neither side (see docs/architecture.md).
"""
