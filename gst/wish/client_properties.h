// Properties whepsrc and whipsink share: endpoint, auth, ICE servers and the client's
// retry and trickle behaviour, all stored in ClientSettings; and the read-only session-url
// and stats the SessionClient reports.
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
  CLIENT_PROP_SESSION_URL,
  CLIENT_PROP_STATS,
  CLIENT_PROP_LAST
};

// protocol is "WHEP" or "WHIP"; the endpoint property is named after it (whep-endpoint).
// stats_fields lists the fields of the stats structure for its documentation.
void install_client_properties(GObjectClass *klass, const char *protocol, const char *stats_fields);
// These return false for ids that are not shared ones. set/get take the settings (under the
// element's object lock); get_client_status answers session-url and stats from the client
// (without that lock: the client takes its own).
bool set_client_property(ClientSettings &s, guint prop_id, const GValue *value);
bool get_client_property(const ClientSettings &s, guint prop_id, GValue *value);
bool get_client_status(SessionClient &client, guint prop_id, GValue *value);

}  // namespace wish
