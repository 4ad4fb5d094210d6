"""Signals that services emit and plugins may listen to."""

from blinker import Namespace

_signals = Namespace()

# sender: the Client; kwargs: event (created, enabled, disabled, deleted,
# limited, expired, edited), actor (who or what did it).
client_changed = _signals.signal("client-changed")

# sender: the Node; kwargs: event (down, up, restarted, restored), count, seconds.
node_changed = _signals.signal("node-changed")
