#pragma once

#include <gst/gst.h>

#include "client_bin.h"

G_BEGIN_DECLS

#define GST_TYPE_WHIP_SINK (gst_whip_sink_get_type())
G_DECLARE_FINAL_TYPE(GstWhipSink, gst_whip_sink, GST, WHIP_SINK, GstWishClientBin)

GST_ELEMENT_REGISTER_DECLARE(whipsink);

G_END_DECLS
