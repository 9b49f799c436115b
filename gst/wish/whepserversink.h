#pragma once

#include <gst/gst.h>

#include "server_bin.h"

G_BEGIN_DECLS

#define GST_TYPE_WHEP_SERVER_SINK (gst_whep_server_sink_get_type())
G_DECLARE_FINAL_TYPE(GstWhepServerSink, gst_whep_server_sink, GST, WHEP_SERVER_SINK, GstWishServerBin)

GST_ELEMENT_REGISTER_DECLARE(whepserversink);

typedef enum {
  GST_WISH_COUNTER_OFFER_NEVER,
  GST_WISH_COUNTER_OFFER_WHEN_NEEDED,
  GST_WISH_COUNTER_OFFER_ALWAYS,
} GstWishCounterOffer;

GType gst_wish_counter_offer_get_type(void);

typedef enum {
  GST_WISH_REDIRECT_ROUND_ROBIN,
  GST_WISH_REDIRECT_LEAST_LOADED,
} GstWishRedirectPolicy;

GType gst_wish_redirect_policy_get_type(void);

G_END_DECLS
