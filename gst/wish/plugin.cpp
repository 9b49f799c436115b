// The wish plugin: WHIP/WHEP elements built on webrtcbin and libsoup.
#include <gst/gst.h>

#include "whepserversink.h"
#include "whepsrc.h"
#include "whipserversrc.h"
#include "whipsink.h"

GST_DEBUG_CATEGORY(wish_http_debug);
GST_DEBUG_CATEGORY(wish_outputs_debug);
GST_DEBUG_CATEGORY(wish_client_debug);
GST_DEBUG_CATEGORY(wish_peer_debug);
GST_DEBUG_CATEGORY(wish_server_debug);
GST_DEBUG_CATEGORY(wish_streams_debug);
GST_DEBUG_CATEGORY(wish_whisp_debug);
GST_DEBUG_CATEGORY(wish_oma_debug);

static gboolean plugin_init(GstPlugin *plugin) {
  GST_DEBUG_CATEGORY_INIT(wish_http_debug, "wishhttp", 0, "wish HTTP server");
  GST_DEBUG_CATEGORY_INIT(wish_outputs_debug, "wishoutputs", 0, "wish output pads of receiving elements");
  GST_DEBUG_CATEGORY_INIT(wish_client_debug, "wishclient", 0, "wish WHIP/WHEP client sessions");
  GST_DEBUG_CATEGORY_INIT(wish_peer_debug, "wishpeer", 0, "wish webrtcbin lifecycle");
  GST_DEBUG_CATEGORY_INIT(wish_server_debug, "wishserver", 0, "wish server sessions");
  GST_DEBUG_CATEGORY_INIT(wish_streams_debug, "wishstreams", 0, "wish streams, tracks and output slots");
  GST_DEBUG_CATEGORY_INIT(wish_whisp_debug, "wishwhisp", 0, "wish WHISP: pulls, switches, merges, grabs");
  GST_DEBUG_CATEGORY_INIT(wish_oma_debug, "wishoma", 0, "wish OMA REST WebRTC signalling front");
  gboolean ok = FALSE;
  ok |= GST_ELEMENT_REGISTER(whepserversink, plugin);
  ok |= GST_ELEMENT_REGISTER(whepsrc, plugin);
  ok |= GST_ELEMENT_REGISTER(whipserversrc, plugin);
  ok |= GST_ELEMENT_REGISTER(whipsink, plugin);
  return ok;
}

GST_PLUGIN_DEFINE(GST_VERSION_MAJOR, GST_VERSION_MINOR, wish,
                  "WebRTC over HTTP: WHEP and WHIP clients and servers", plugin_init, VERSION, "LGPL",
                  GST_PACKAGE_NAME, GST_PACKAGE_ORIGIN)
