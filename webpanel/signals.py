"""Signals that services emit and plugins may listen to."""

from blinker import Namespace

_signals = Namespace()

# sender: the Client; kwargs: event (created, edited, enabled, disabled,
# reset, extended, limited, expired, activated (on hold ends), new_uuid,
# new_sub_token, nodes, deleted), actor (who or what did it), old_status.
client_changed = _signals.signal("client-changed")

# sender: the Node; kwargs: event (down, up, restarted, restored), count, seconds.
node_changed = _signals.signal("node-changed")
