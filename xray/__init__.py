"""The gateway to Xray: gRPC stubs, the client, the simulator, share links.

Knows nothing of Flask or the database; takes and returns plain values.
"""
