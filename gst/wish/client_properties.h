// Properties whepsrc and whipsink share: endpoint, auth, ICE servers and the client's
// retry and trickle behaviour, all stored in ClientSettings.
#pragma once

#include <gst/gst.h>

#include "session_client.h"

namespace wish {

// Property ids 1 .. CLIENT_PROP_LAST-1 are the shared ones; elements number theirs after.
enum ClientProperty {
  CLIENT_PROP_ENDPOINT = 1,
  CLIENT_PROP_AUTH_TOKEN,
  CLIENT_PROP_STUN_SERVER,
  CLIENT_PROP_TURN_SERVERS,
  CLIENT_PROP_USE_LINK_HEADERS,
  CLIENT_PROP_ICE_TRANSPORT_POLICY,
  CLIENT_PROP_TIMEOUT,
  CLIENT_PROP_MAX_RECONNECTS,
  CLIENT_PROP_RETRY_MAX_DELAY,
  CLIENT_PROP_TRICKLE,
  CLIENT_PROP_ICE_LOCAL_ADDRESSES,
  CLIENT_PROP_LAST
};

// protocol is "WHEP" or "WHIP"; the endpoint property is named after it (whep-endpoint).
void install_client_properties(GObjectClass *klass, const char *protocol);
// Both return false for ids that are not shared ones.
bool set_client_property(ClientSettings &s, guint prop_id, const GValue *value);
bool get_client_property(const ClientSettings &s, guint prop_id, GValue *value);

}  // namespace wish
